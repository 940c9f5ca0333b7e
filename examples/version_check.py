"""A stand-in for a request handler with an uncached version check, as a tracing
library might do it: every "request" calls importlib.metadata.version(), which
parses package metadata (email.feedparser) each time. `make demo` profiles it."""
import importlib.metadata
import sys
import time


def library_version():
    # The bug: looked up on every call instead of once.
    return importlib.metadata.version("fastapi")


def instrumented_call():
    return library_version()


def render(items):
    return ",".join(str(i * i) for i in items)


def handle_request(n):
    instrumented_call()
    return render(range(200 + n % 50))


def serve(seconds):
    end = time.monotonic() + seconds
    served = 0
    while time.monotonic() < end:
        handle_request(served)
        served += 1
    print("served %d requests in %.0f s (%.0f/s)" % (served, seconds, served / seconds))


if __name__ == "__main__":
    serve(float(sys.argv[1]) if len(sys.argv) > 1 else 5)
