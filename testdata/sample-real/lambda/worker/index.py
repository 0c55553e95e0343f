from shared.responses import ok

from jobs import run


def handler(event, context):
    return ok(run(event.get("job", "noop")))
