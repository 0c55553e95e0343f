import os

from shared.responses import ok


def handler(event, context):
    here = os.path.dirname(__file__)
    return ok(sorted(os.listdir(os.path.join(here, "site"))))
