# A tiny WSGI app for the gunicorn test: each request burns ~5 ms of CPU in
# burn_for_request(), so a sampling profiler sees it in the workers.
import time


def burn_for_request():
    end = time.thread_time() + 0.005
    n = 0
    while time.thread_time() < end:
        n += 1
    return b"ok %d\n" % n


def app(environ, start_response):
    body = burn_for_request()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
