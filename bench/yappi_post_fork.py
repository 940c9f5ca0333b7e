# gunicorn config used only by the demo-RPS benchmark: starts yappi (wall clock)
# inside every worker right after it is forked, as a user adding yappi in-process would.
def post_fork(server, worker):
    import yappi
    yappi.set_clock_type("wall")
    yappi.start()
