# A FastAPI app served by uvicorn for the --async test. Usage:
#   python fastapi_app.py READY_FD WAIT_FD PORT
# GET /work awaits a chain of three coroutines; the innermost calls crunch(), a
# CPU-heavy function. Writes "ready" once the server accepts connections.
import asyncio
import os
import sys
import time

import uvicorn
from fastapi import FastAPI

app = FastAPI()


def crunch():
    end = time.thread_time() + 0.02
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


async def step_three():
    await asyncio.sleep(0)
    return crunch()


async def step_two():
    return await step_three()


async def step_one():
    return await step_two()


@app.get("/work")
async def work_endpoint():
    return {"n": await step_one()}


class Server(uvicorn.Server):
    def __init__(self, config, ready_fd):
        super().__init__(config)
        self.ready_fd = ready_fd

    async def startup(self, sockets=None):
        await super().startup(sockets)
        os.write(self.ready_fd, b"ready\n")


if __name__ == "__main__":
    ready_fd, port = int(sys.argv[1]), int(sys.argv[3])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio")
    Server(config, ready_fd).run()
