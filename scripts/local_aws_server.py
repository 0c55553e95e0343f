"""The local AWS server for tests, benchmarks and the demo: moto's server on
loopback, with a few patches where moto answers differently from AWS in ways
artifact depends on.

Usage: python local_aws_server.py [--port N] [--exit-on-stdin-eof]
Prints "ready <port>" on stdout once it accepts connections (port 0 picks a
free one). With --exit-on-stdin-eof it stops when its standard input closes,
so a test harness that dies never leaves it behind.
"""

import argparse
import logging
import sys
import threading


def patch_change_set_outputs():
    # AWS: after a change set is executed, DescribeStacks returns the Outputs of
    # the template the change set applied. moto keeps the output map built when
    # the stack was first created (none for a stack created by a CREATE change
    # set, stale ones after an update), so rebuild it after apply.
    from moto.cloudformation import models

    original = models.ChangeSet.apply

    def apply(self):
        original(self)
        self.stack.template_dict = self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    models.ChangeSet.apply = apply


def patch_invalidation_status():
    # AWS: a finished CloudFront invalidation has Status "Completed".
    # moto says "COMPLETED".
    from moto.cloudfront import models

    original = models.Invalidation.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.status = "Completed"

    models.Invalidation.__init__ = init


def patch_update_function_code_missing_key():
    # AWS: UpdateFunctionCode from an S3 object that does not exist fails with
    # InvalidParameterValueException. moto returns success with an empty
    # CodeSha256; refuse the call instead.
    from moto.awslambda import models
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.s3.models import s3_backends

    original = models.LambdaFunction.update_function_code

    def update_function_code(self, updated_spec):
        bucket = updated_spec.get("S3Bucket")
        key = updated_spec.get("S3Key")
        if bucket and key:
            backend = s3_backends[self.account_id][self.partition]
            try:
                found = backend.get_object(bucket, key)
            except Exception:
                found = None
            if found is None:
                raise InvalidParameterValueException(
                    f"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: "
                    f"The specified key does not exist. (bucket {bucket}, key {key})"
                )
        return original(self, updated_spec)

    models.LambdaFunction.update_function_code = update_function_code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()

    patch_change_set_outputs()
    patch_invalidation_status()
    patch_update_function_code_missing_key()

    # One line per request drowns the test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"ready {port}", flush=True)
    if args.exit_on_stdin_eof:
        sys.stdin.read()
    else:
        threading.Event().wait()
    server.stop()


if __name__ == "__main__":
    main()
