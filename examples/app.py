"""The demo service: a FastAPI endpoint that awaits a simulated slow LLM call and,
like a tracing library with an uncached version check, calls
importlib.metadata.version() for every span it records. Run under gunicorn with
UvicornWorkers (see examples/demo.sh). DEMO_CACHE_VERSION=1 caches the lookup:
the one-line fix the profile points at."""
import asyncio
import functools
import importlib.metadata
import os

from fastapi import FastAPI

app = FastAPI()
SPANS_PER_REQUEST = 20


def _lookup_version():
    return importlib.metadata.version("fastapi")


if os.environ.get("DEMO_CACHE_VERSION") == "1":
    _lookup_version = functools.lru_cache(maxsize=None)(_lookup_version)


def is_instrumented_library():
    # What the tracing library does on every span: ask for the installed version.
    return _lookup_version() >= "0"


def record_span(name):
    if is_instrumented_library():
        return {"span": name}
    return None


async def call_llm(prompt):
    await asyncio.sleep(0.1)  # the model's latency
    return "echo: " + prompt


async def instrumented_completion(prompt):
    for i in range(SPANS_PER_REQUEST):
        record_span("completion-%d" % i)
    return await call_llm(prompt)


async def answer(prompt):
    return await instrumented_completion(prompt)


@app.get("/chat")
async def chat(q: str = "hello"):
    return {"answer": await answer(q)}
