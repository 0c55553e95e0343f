import json


def ok(body):
    return {"statusCode": 200, "body": json.dumps(body)}
