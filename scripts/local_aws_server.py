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


def patch_copy_of_a_multipart_object_checksum():
    # AWS: a copy made by CopyObject is one part, and its checksum is the
    # whole object's. moto copies the source's composite checksum of parts
    # instead, which every checksum-validating GET of the copy then refuses.
    from moto.s3.models import S3Backend
    from moto.s3.utils import compute_checksum

    original = S3Backend.copy_object

    def copy_object(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs):
        result = original(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
        key = self.get_object(dest_bucket_name, dest_key_name)
        if key is not None and key.checksum_value and key.checksum_algorithm and src_key.multipart:
            key.checksum_value = compute_checksum(key.value, key.checksum_algorithm).decode()
            key.checksum_type = "FULL_OBJECT"
            key.checksum_parts = None
        return result

    S3Backend.copy_object = copy_object


def patch_conditional_put_atomic():
    # AWS: a conditional PutObject (If-Match / If-None-Match) checks and writes
    # as one step, so of two runs writing against the same ETag one gets 412.
    # moto checks, then writes, on whichever server thread: both can pass.
    # One lock around conditional PUTs makes them one step here too.
    import threading
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    def put_object(self):
        if self.headers.get("If-Match") or self.headers.get("If-None-Match"):
            with lock:
                return original(self)
        return original(self)

    S3Response.put_object = put_object


def patch_kms_sign_digest():
    # AWS: Sign and Verify with MessageType DIGEST take the message as the
    # digest already made (the key signs it as is). moto ignores MessageType
    # and hashes the message's base64 text again, so a signature made
    # elsewhere from the same digest would not verify. Done as AWS does here,
    # for the ECDSA and RSA-PSS SHA-256 algorithms.
    import base64
    import json
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
    from moto.core.exceptions import JsonRESTError
    from moto.kms.responses import KmsResponse

    original_sign, original_verify = KmsResponse.sign, KmsResponse.verify

    def scheme(algorithm):
        prehashed = utils.Prehashed(hashes.SHA256())
        if algorithm == "ECDSA_SHA_256":
            return lambda key, op, *a: getattr(key, op)(*a, ec.ECDSA(prehashed))
        if algorithm == "RSASSA_PSS_SHA_256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return lambda key, op, *a: getattr(key, op)(*a, pss, prehashed)
        return None

    def blob(value):
        # moto's parser gives blobs as bytes, or as their base64 text.
        return value if isinstance(value, bytes) else base64.b64decode(value)

    def digest_call(self):
        if self._get_param("MessageType") != "DIGEST":
            return None
        run = scheme(self._get_param("SigningAlgorithm"))
        if run is None:
            return None
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        return key, run, blob(self._get_param("Message"))

    def sign(self):
        call = digest_call(self)
        if call is None:
            return original_sign(self)
        key, run, digest = call
        signature = run(key.private_key.private_key, "sign", digest)
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": self._get_param("SigningAlgorithm")})

    def verify(self):
        call = digest_call(self)
        if call is None:
            return original_verify(self)
        key, run, digest = call
        signature = blob(self._get_param("Signature"))
        try:
            run(key.private_key.private_key.public_key(), "verify", signature, digest)
        except InvalidSignature:
            raise JsonRESTError("KMSInvalidSignatureException", "The signature is not valid.")
        return json.dumps({"KeyId": key.arn, "SignatureValid": True,
                           "SigningAlgorithm": self._get_param("SigningAlgorithm")})

    KmsResponse.sign = sign
    KmsResponse.verify = verify


def patch_template_url_on_loopback():
    # AWS: CloudFormation reads a TemplateURL from the S3 endpoint it names, in
    # path style (https://s3.<region>.amazonaws.com/<bucket>/<key>). artifact
    # builds the same URL on the endpoint override (http://127.0.0.1:<port>/
    # <bucket>/<key>); moto only reads "localhost" URLs in path style and takes
    # "127" for a bucket name otherwise.
    from moto.cloudformation import responses, utils

    original = utils.get_stack_from_s3_url

    def get_stack_from_s3_url(template_url, account_id, partition):
        if template_url.startswith("http://127.0.0.1:"):
            template_url = template_url.replace("http://127.0.0.1:", "http://localhost:", 1)
        return original(template_url, account_id=account_id, partition=partition)

    utils.get_stack_from_s3_url = get_stack_from_s3_url
    responses.get_stack_from_s3_url = get_stack_from_s3_url


# Runtimes Lambda no longer accepts for creating or updating functions.
RETIRED_RUNTIMES = {"python2.7", "python3.6", "python3.7", "nodejs10.x", "nodejs12.x", "nodejs14.x"}


class ResourceFailed(Exception):
    def __init__(self, logical_id, resource_type, reason):
        super().__init__(reason)
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def patch_resource_failures_roll_back():
    # AWS: a resource that fails during ExecuteChangeSet gets a *_FAILED event
    # with the service's reason, and the stack rolls back: a first create ends
    # in ROLLBACK_COMPLETE (which can then only be deleted), an update in
    # UPDATE_ROLLBACK_COMPLETE. ExecuteChangeSet itself succeeds. moto creates
    # and updates resources without ever failing, and has no rollback states.
    # These patches make a Lambda function with a retired runtime fail, as AWS
    # does, and turn any resource failure into AWS's events and final states
    # (a failed create's resources are deleted; moto does not restore
    # resources an update changed before the failure).
    from moto.awslambda import models as lambda_models
    from moto.cloudformation import models, parsing

    def check_runtime(props):
        runtime = (props or {}).get("Runtime")
        if runtime in RETIRED_RUNTIMES:
            raise ValueError(
                f"Resource handler returned message: \"The runtime parameter of {runtime} is no longer "
                "supported for creating or updating AWS Lambda functions. We recommend you use a "
                "supported runtime while creating or updating functions. (Service: Lambda, Status Code: 400)\""
            )

    fn = lambda_models.LambdaFunction
    create_fn = fn.create_from_cloudformation_json.__func__
    update_fn = fn.update_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, *args, **kwargs):
        check_runtime(cloudformation_json.get("Properties"))
        return create_fn(cls, resource_name, cloudformation_json, *args, **kwargs)

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs):
        check_runtime(cloudformation_json.get("Properties"))
        return update_fn(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs)

    fn.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    fn.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)

    def tag(original):
        def wrapper(logical_id, resource_json, *args, **kwargs):
            try:
                return original(logical_id, resource_json, *args, **kwargs)
            except ResourceFailed:
                raise
            except Exception as e:
                raise ResourceFailed(logical_id, resource_json.get("Type", ""), str(e))
        return wrapper

    parsing.parse_and_create_resource = tag(parsing.parse_and_create_resource)
    tagged_update = tag(parsing.parse_and_update_resource)

    # moto's update retries a resource whose update raised (for dependency
    # order); a resource that failed fails the update instead.
    def parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs):
        if getattr(resources_map, "failed_update", None) is not None:
            raise resources_map.failed_update
        try:
            return tagged_update(logical_id, resource_json, resources_map, *args, **kwargs)
        except ResourceFailed as failure:
            resources_map.failed_update = failure
            raise

    parsing.parse_and_update_resource = parse_and_update_resource
    original_update = parsing.ResourceMap.update

    def update(self, *args, **kwargs):
        self.failed_update = None
        try:
            original_update(self, *args, **kwargs)
        finally:
            failed, self.failed_update = self.failed_update, None
            if failed is not None:
                raise failed

    parsing.ResourceMap.update = update

    original_execute = models.CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = None
        for cs in self.change_sets.values():
            if change_set_name in (cs.change_set_id, cs.change_set_name):
                change_set = cs
        try:
            return original_execute(self, change_set_name, stack_name)
        except ResourceFailed as failure:
            if change_set is None:
                raise
            stack = self.stacks[change_set.stack_id]
            verb = "CREATE" if change_set.change_set_type == "CREATE" else "UPDATE"
            # A nested stack's failure has its parent's events already.
            recorded = getattr(failure, "recorded", False)
            for status, reason in [] if recorded else [(f"{verb}_IN_PROGRESS", None), (f"{verb}_FAILED", failure.reason)]:
                stack.events.append(models.Event(
                    stack_id=stack.stack_id, stack_name=stack.name,
                    logical_resource_id=failure.logical_id, physical_resource_id="",
                    resource_type=failure.resource_type, resource_status=status,
                    resource_status_reason=reason, resource_properties=None,
                ))
            final = "ROLLBACK" if verb == "CREATE" else "UPDATE_ROLLBACK"
            stack._add_stack_event(f"{final}_IN_PROGRESS", resource_status_reason=(
                f"The following resource(s) failed to {verb.lower()}: [{failure.logical_id}]. "
                + ("Rollback requested by user." if verb == "CREATE" else "")
            ).strip())
            if verb == "CREATE":
                # A failed create's rollback deletes what it made (named IAM
                # roles, nested stacks), so the next create can make them again.
                try:
                    stack.resource_map.delete()
                except Exception:
                    pass
            stack._add_stack_event(f"{final}_COMPLETE")
            stack.status = f"{final}_COMPLETE"
            change_set.execution_status = "EXECUTE_FAILED"

    models.CloudFormationBackend.execute_change_set = execute_change_set


def patch_function_layers_from_templates():
    # AWS: an AWS::Lambda::Function's Layers property sets the function's
    # layers. moto's CloudFormation create passes only some properties on and
    # drops Layers (its update applies them). This applies them on create too.
    from moto.awslambda import models as lambda_models

    fn = lambda_models.LambdaFunction
    create_fn = fn.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, *args, **kwargs):
        created = create_fn(cls, resource_name, cloudformation_json, *args, **kwargs)
        layers = (cloudformation_json.get("Properties") or {}).get("Layers")
        if layers:
            created.layers = created._get_layers_data(layers)
        return created

    fn.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def patch_cloudwatch_rpc_v2_cbor():
    # AWS: CloudWatch answers the Smithy RPC v2 CBOR protocol (POST
    # /service/GraniteServiceVersion20100801/operation/<Operation>, CBOR
    # bodies), which the AWS SDK for Rust uses. moto answers CloudWatch only in
    # its query and JSON protocols. This turns a CBOR request into the same
    # JSON request (timestamps as epoch seconds) and the JSON answer back into
    # CBOR, status and error shapes unchanged.
    import gzip
    import io
    import json
    from datetime import datetime

    import cbor2
    from moto.moto_server import werkzeug_app

    prefix = "/service/GraniteServiceVersion20100801/operation/"

    def plain(value):
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value

    original = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(prefix):
            return original(self, environ, start_response)
        operation = path[len(prefix):]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            raw = gzip.decompress(raw)
            environ.pop("HTTP_CONTENT_ENCODING")
        body = json.dumps(plain(cbor2.loads(raw)) if raw else {}).encode()
        environ.update({
            "PATH_INFO": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"GraniteServiceVersion20100801.{operation}",
            "wsgi.input": io.BytesIO(body),
        })
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        chunks = b"".join(original(self, environ, capture))
        try:
            doc = json.loads(chunks) if chunks.strip() else {}
        except ValueError:
            doc = {"__type": "InternalFailure", "message": chunks.decode("utf-8", "replace")}
        out = cbor2.dumps(doc)
        headers = [(k, v) for k, v in answer["headers"] if k.lower() not in ("content-type", "content-length")]
        headers += [("Content-Type", "application/cbor"), ("Content-Length", str(len(out))), ("smithy-protocol", "rpc-v2-cbor")]
        start_response(answer["status"], headers)
        return [out]

    werkzeug_app.DomainDispatcherApplication.__call__ = call


def patch_create_change_set_over_review():
    # AWS: a CREATE change set for a stack that exists only as REVIEW_IN_PROGRESS
    # (an earlier change set was never executed) goes to that same stack. moto
    # creates a second stack of the same name, and DescribeStacks keeps
    # answering with the first one, which never leaves REVIEW_IN_PROGRESS.
    from moto.cloudformation import models

    original = models.CloudFormationBackend.create_change_set

    def create_change_set(self, stack_name, change_set_name, *args, **kwargs):
        change_set_type = kwargs.get("change_set_type", args[4] if len(args) > 4 else None)
        if change_set_type == "CREATE":
            for stack_id, stack in list(self.stacks.items()):
                if stack.name == stack_name and stack.status == "REVIEW_IN_PROGRESS":
                    del self.stacks[stack_id]
        return original(self, stack_name, change_set_name, *args, **kwargs)

    models.CloudFormationBackend.create_change_set = create_change_set


def patch_change_set_not_found():
    # AWS: DeleteChangeSet and DescribeChangeSet of a change set that does not
    # exist fail with ChangeSetNotFound (a delete retried after its first
    # answer was lost meets this). moto's delete raises UnboundLocalError (an
    # HTTP 500) and its describe a ValidationError about a stack.
    from moto.cloudformation import models
    from moto.cloudformation.exceptions import CloudFormationError

    class ChangeSetNotFound(CloudFormationError):
        code = "ChangeSetNotFound"

    def exists(self, change_set_name):
        return change_set_name in self.change_sets or any(
            cs.change_set_name == change_set_name for cs in self.change_sets.values()
        )

    for name in ("delete_change_set", "describe_change_set"):
        original = getattr(models.CloudFormationBackend, name)

        def patched(self, change_set_name, *args, _original=original, **kwargs):
            if not exists(self, change_set_name):
                raise ChangeSetNotFound(f"ChangeSet [{change_set_name}] does not exist")
            return _original(self, change_set_name, *args, **kwargs)

        setattr(models.CloudFormationBackend, name, patched)


def patch_create_change_set_client_token():
    # AWS: CreateChangeSet retried with the same ClientToken (its first answer
    # lost) returns the change set the first call made. moto ignores the token
    # and makes a second change set of the same name. artifact passes the
    # change set's name as its token, so a name already on the stack is taken
    # as that retry.
    from moto.cloudformation import models

    original = models.CloudFormationBackend.create_change_set

    def create_change_set(self, stack_name, change_set_name, *args, **kwargs):
        for cs in self.change_sets.values():
            if cs.change_set_name == change_set_name and cs.stack_name == stack_name:
                return cs.change_set_id, cs.stack_id
        return original(self, stack_name, change_set_name, *args, **kwargs)

    models.CloudFormationBackend.create_change_set = create_change_set


def patch_execute_change_set_client_request_token():
    # AWS: ExecuteChangeSet retried with the same ClientRequestToken (its first
    # answer lost) is accepted and starts nothing new. moto executes the change
    # set again, creating every resource a second time. artifact passes the
    # change set's name as the token: a change set already executed is taken
    # as that retry.
    from moto.cloudformation import models

    original = models.CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        for cs in self.change_sets.values():
            if change_set_name in (cs.change_set_id, cs.change_set_name) and cs.execution_status in (
                "EXECUTE_COMPLETE", "EXECUTE_FAILED", "EXECUTE_IN_PROGRESS"
            ):
                return None
        return original(self, change_set_name, stack_name)

    models.CloudFormationBackend.execute_change_set = execute_change_set


def patch_resource_types_moto_lacks():
    # AWS: CloudFormation creates every resource type. moto's CloudFormation has
    # no model for Cognito user pools, clients and identity pools, CloudFront
    # distributions and origin access controls, CodeCommit repositories,
    # CodeBuild projects and source credentials, CodePipeline pipelines or
    # CloudWatch alarms: it skips them, and !Ref /
    # !GetAtt on them fails. These models create the Cognito, CloudFront and
    # CloudWatch resources in moto's own backends (so the APIs artifact and the
    # tests call find them) and record the CI resources with the identifiers
    # and attributes templates read.
    import uuid

    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    def model(cfn_type, name_property, create, attributes):
        class Model(CloudFormationModel):
            # moto files models by the service named in their module.
            __module__ = "moto.cloudformation.local_models"

            def __init__(self, name, props, account_id, region):
                self.name, self.props = name, props
                self.account_id, self.region = account_id, region
                self.ref = create(self)

            @staticmethod
            def cloudformation_type():
                return cfn_type

            @staticmethod
            def cloudformation_name_type():
                return name_property

            @classmethod
            def has_cfn_attr(cls, attr):
                return attr in attributes

            @classmethod
            def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
                return cls(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

            @classmethod
            def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
                original_resource.props = cloudformation_json.get("Properties", {})
                return original_resource

            @classmethod
            def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
                pass

            def is_created(self):
                return True

            @property
            def physical_resource_id(self):
                return self.ref

            def get_cfn_attribute(self, attr):
                return attributes[attr](self)

        # moto keeps one model per class name: give each type its own.
        return type(cfn_type.replace("::", ""), (Model,), {"__module__": Model.__module__})

    def arn(service, path):
        return lambda r: f"arn:aws:{service}:{r.region}:{r.account_id}:{path(r)}"

    def user_pool(r):
        from moto.cognitoidp.models import cognitoidp_backends
        pool = cognitoidp_backends[r.account_id][r.region].create_user_pool(r.name, {})
        r.arn = pool.arn
        return pool.id

    def user_pool_client(r):
        from moto.cognitoidp.models import cognitoidp_backends
        backend = cognitoidp_backends[r.account_id][r.region]
        client = backend.create_user_pool_client(
            r.props["UserPoolId"], False, {"ClientName": r.props.get("ClientName", r.name)})
        return client.id

    def distribution(r):
        from moto.cloudfront.models import cloudfront_backends
        cfg = r.props.get("DistributionConfig", {})
        origin = (cfg.get("Origins") or [{}])[0]
        origin_id = origin.get("Id", "origin")
        config = {
            "CallerReference": str(uuid.uuid4()),
            "Comment": cfg.get("Comment", ""),
            "Enabled": cfg.get("Enabled", True),
            "Origins": {"Quantity": 1, "Items": [{"Id": origin_id, "DomainName": origin.get("DomainName", "example.com")}]},
            "DefaultCacheBehavior": {"TargetOriginId": origin_id, "ViewerProtocolPolicy": "redirect-to-https"},
            "DefaultRootObject": cfg.get("DefaultRootObject", ""),
        }
        dist, _, _ = cloudfront_backends[r.account_id]["global"].create_distribution(config, [])
        r.domain = dist.domain_name
        return dist.distribution_id

    model("AWS::Cognito::UserPool", "UserPoolName", user_pool, {
        "Arn": lambda r: r.arn,
        "ProviderName": lambda r: f"cognito-idp.{r.region}.amazonaws.com/{r.ref}",
        "ProviderURL": lambda r: f"https://cognito-idp.{r.region}.amazonaws.com/{r.ref}",
    })
    model("AWS::Cognito::UserPoolClient", "ClientName", user_pool_client, {
        "ClientId": lambda r: r.ref,
        "Name": lambda r: r.props.get("ClientName", r.name),
    })
    model("AWS::CloudFront::Distribution", "", distribution, {
        "DomainName": lambda r: r.domain,
        "Id": lambda r: r.ref,
    })
    # Stand-ins (recorded, no backend): Cognito identity pools and their role
    # attachments, CloudFront origin access controls.
    model("AWS::Cognito::IdentityPool", "IdentityPoolName", lambda r: f"{r.region}:{uuid.uuid4()}", {
        "Name": lambda r: r.props.get("IdentityPoolName", r.name),
    })
    model("AWS::Cognito::IdentityPoolRoleAttachment", "", lambda r: f"{r.props.get('IdentityPoolId', '')}-roles", {})
    model("AWS::CloudFront::OriginAccessControl", "", lambda r: uuid.uuid4().hex[:14].upper(), {
        "Id": lambda r: r.ref,
    })
    model("AWS::CodeCommit::Repository", "RepositoryName", lambda r: str(uuid.uuid4()), {
        "Arn": arn("codecommit", lambda r: r.props.get("RepositoryName", r.name)),
        "Name": lambda r: r.props.get("RepositoryName", r.name),
        "CloneUrlHttp": lambda r: f"https://git-codecommit.{r.region}.amazonaws.com/v1/repos/{r.props.get('RepositoryName', r.name)}",
        "CloneUrlSsh": lambda r: f"ssh://git-codecommit.{r.region}.amazonaws.com/v1/repos/{r.props.get('RepositoryName', r.name)}",
    })
    model("AWS::CodeBuild::Project", "Name", lambda r: r.props.get("Name", r.name), {
        "Arn": arn("codebuild", lambda r: f"project/{r.ref}"),
    })
    model("AWS::CodePipeline::Pipeline", "Name", lambda r: r.props.get("Name", r.name), {
        "Version": lambda r: "1",
    })
    model("AWS::CodeBuild::SourceCredential", "", lambda r: arn("codebuild", lambda r: f"token/{r.props.get('ServerType', 'github').lower()}")(r), {})

    def alarm(r):
        # Made in moto's CloudWatch backend, so DescribeAlarms lists it with its
        # actions (metric math is recorded without its queries).
        from moto.cloudwatch.models import cloudwatch_backends
        p = r.props
        name = p.get("AlarmName", r.name)
        cloudwatch_backends[r.account_id][r.region].put_metric_alarm(
            name=name, namespace=p.get("Namespace"), metric_name=p.get("MetricName"),
            comparison_operator=p.get("ComparisonOperator"), evaluation_periods=int(p.get("EvaluationPeriods", 1)),
            period=int(p.get("Period", 60)), threshold=float(p.get("Threshold", 0)), statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""), dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []), treat_missing_data=p.get("TreatMissingData"))
        return name

    model("AWS::CloudWatch::Alarm", "AlarmName", alarm, {
        "Arn": arn("cloudwatch", lambda r: f"alarm:{r.ref}"),
    })
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def patch_get_att_first_dot():
    # AWS: `!GetAtt Nested.Outputs.Name` (and `${Nested.Outputs.Name}` in a
    # !Sub) names resource `Nested` and attribute `Outputs.Name`: the name is
    # split on its first dot only. moto splits on every dot and reads
    # attribute "Outputs". These make every GetAtt two parts, split once.
    from moto.cloudformation import models, parsing, responses, utils

    original_tag = utils.yaml_tag_constructor

    def yaml_tag_constructor(loader, tag, node):
        if tag == "!GetAtt" and not isinstance(node.value, list):
            return {"Fn::GetAtt": node.value.split(".", 1)}
        return original_tag(loader, tag, node)

    for module in (utils, models, responses):
        module.yaml_tag_constructor = yaml_tag_constructor

    original_clean = parsing.clean_json

    def clean_json(resource_json, resources_map):
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            target = resource_json["Fn::GetAtt"]
            if isinstance(target, str):
                target = target.split(".", 1)
            if isinstance(target, list) and len(target) > 2:
                target = [target[0], ".".join(str(t) for t in target[1:])]
            resource_json = dict(resource_json, **{"Fn::GetAtt": target})
        return original_clean(resource_json, resources_map)

    parsing.clean_json = clean_json


def patch_conditional_outputs():
    # AWS: an output whose Condition is false is not evaluated, exported or
    # listed. moto evaluates every exported output's value (of a resource that
    # was never made, so DescribeStacks answers HTTP 500). This skips them.
    from moto.cloudformation import parsing

    def exports(self):
        found = []
        for value in (self._output_json_map or {}).values():
            condition = value.get("Condition")
            if condition and not self._resource_map.lazy_condition_map.get(condition):
                continue
            if value.get("Export"):
                name = parsing.clean_json(value["Export"].get("Name"), self._resource_map)
                found.append(parsing.Export(self._stack_id, name, parsing.clean_json(value.get("Value"), self._resource_map)))
        return found

    parsing.OutputMap.exports = property(exports)


def patch_nested_stacks():
    # AWS: an AWS::CloudFormation::Stack resource is a stack of its own, named
    # <parent>-<LogicalId>-<suffix>, whose physical id (and !Ref) is its stack
    # ARN and whose outputs `!GetAtt <LogicalId>.Outputs.<Name>` reads. Its
    # parent lists it with ParentId/RootId, and records events for it: IN_PROGRESS,
    # then COMPLETE, or FAILED with "Embedded stack <arn> was not successfully
    # created/updated" while the nested stack's own events hold the failing
    # resource and its reason. An update of the parent updates the nested stack
    # in place, also when only the template at its TemplateURL changed.
    # moto has no Outputs attribute, uses the name as physical id, records no
    # parent events, replaces a nested stack on update (a new one, its
    # resources made again) and sees no change in a template behind an
    # unchanged URL. These patches do what AWS does.
    from moto.cloudformation import models, parsing, utils
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.utilities.utils import get_partition

    Stack = models.Stack
    backends = models.cloudformation_backends

    def get_cfn_attribute(self, attr):
        if attr.startswith("Outputs."):
            output = self.output_map.get(attr[len("Outputs."):])
            if output is not None:
                return output.value
        raise UnformattedGetAttTemplateException()

    Stack.get_cfn_attribute = get_cfn_attribute
    Stack.physical_resource_id = property(lambda self: self.stack_id)

    def event(stack, logical_id, physical_id, status, reason=None, kind="AWS::CloudFormation::Stack"):
        stack.events.append(models.Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
            physical_resource_id=physical_id, resource_type=kind, resource_status=status,
            resource_status_reason=reason, resource_properties=None))

    def body_at(url, account_id, region_name):
        return utils.get_stack_from_s3_url(url, account_id=account_id, partition=get_partition(region_name))

    def embedded_failure(parent, logical_id, nested, failure, verb):
        # The failing resource's events go to the nested stack; the parent's
        # resource fails with AWS's "Embedded stack" reason.
        upper = verb.upper()
        event(nested, failure.logical_id, "", f"{upper}_IN_PROGRESS", kind=failure.resource_type)
        event(nested, failure.logical_id, "", f"{upper}_FAILED", failure.reason, failure.resource_type)
        summary = f"The following resource(s) failed to {verb}: [{failure.logical_id}]."
        if verb == "create":
            nested._add_stack_event("CREATE_FAILED", resource_status_reason=summary)
            nested.status = "CREATE_FAILED"
            reason = f"Embedded stack {nested.stack_id} was not successfully created: {summary}"
        else:
            nested._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=summary)
            nested._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            nested.status = "UPDATE_ROLLBACK_COMPLETE"
            reason = (f"Embedded stack {nested.stack_id} was not successfully updated. Currently in "
                      f"UPDATE_ROLLBACK_IN_PROGRESS with reason: {summary}")
        event(parent, logical_id, nested.stack_id, f"{upper}_FAILED", reason)
        failed = ResourceFailed(logical_id, "AWS::CloudFormation::Stack", reason)
        failed.recorded = True
        return failed

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend = backends[account_id][region_name]
        parent = backend.stacks.get(kwargs.get("StackId"))
        logical_id = kwargs.get("LogicalId", resource_name)
        props = cloudformation_json["Properties"]
        url = props["TemplateURL"]
        if parent is not None:
            event(parent, logical_id, "", "CREATE_IN_PROGRESS")
        try:
            nested = backend.create_stack(name=resource_name, template=body_at(url, account_id, region_name),
                                          parameters=props.get("Parameters", {}))
        except ResourceFailed as failure:
            nested = next((s for s in backend.stacks.values() if s.name == resource_name), None)
            if nested is None or parent is None:
                raise
            failed = embedded_failure(parent, logical_id, nested, failure, "create")
            # Its rollback deletes what it made.
            try:
                backend.delete_stack(nested.stack_id)
            except Exception:
                pass
            raise failed
        nested.template_url = url
        if parent is not None:
            nested.parent_id = parent.stack_id
            nested.root_id = getattr(parent, "root_id", None) or parent.stack_id
            event(parent, logical_id, nested.stack_id, "CREATE_COMPLETE")
        return nested

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        backend = backends[account_id][region_name]
        nested = original_resource
        parent = backend.stacks.get(getattr(nested, "parent_id", None))
        logical_id = getattr(nested, "logical_resource_id", new_resource_name)
        props = cloudformation_json["Properties"]
        url = props["TemplateURL"]
        if parent is not None:
            event(parent, logical_id, nested.stack_id, "UPDATE_IN_PROGRESS")
        before = nested.template
        try:
            nested.update(body_at(url, account_id, region_name), parameters=props.get("Parameters", {}))
        except ResourceFailed as failure:
            # Rolled back: it keeps the template it had.
            nested.template = before
            nested._parse_template()
            if parent is None:
                raise
            raise embedded_failure(parent, logical_id, nested, failure, "update")
        nested.template_url = url
        nested.status = "UPDATE_COMPLETE"
        if parent is not None:
            event(parent, logical_id, nested.stack_id, "UPDATE_COMPLETE")
        return nested

    Stack.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    Stack.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)

    original_diff = parsing.ResourceMap.build_resource_diff

    def build_resource_diff(self, other_template, parameters=None):
        diff = original_diff(self, other_template, parameters)
        new = other_template.get("Resources") or {}
        for name, resource in new.items():
            if resource.get("Type") != "AWS::CloudFormation::Stack" or name in diff["Modify"] or name in diff["Add"]:
                continue
            nested = self._parsed_resources.get(name)
            url = getattr(nested, "template_url", None)
            if url is None:
                continue
            try:
                body = body_at(url, self._account_id, self._region_name)
            except Exception:
                continue
            if Stack.parse_template(body) != nested.template_dict:
                diff["Modify"].append(name)
        return diff

    parsing.ResourceMap.build_resource_diff = build_resource_diff

    original_create = models.CloudFormationBackend.create_change_set

    def create_change_set(self, stack_name, change_set_name, *args, **kwargs):
        # An unchanged root template over a changed nested template is a change.
        change_set_id, stack_id = original_create(self, stack_name, change_set_name, *args, **kwargs)
        cs = self.change_sets.get(change_set_id)
        if cs is not None and cs.status == "FAILED" and cs.changes:
            cs.status, cs.execution_status, cs.status_reason = "CREATE_COMPLETE", "AVAILABLE", None
        return change_set_id, stack_id

    models.CloudFormationBackend.create_change_set = create_change_set


def patch_validate_template_syntax_only():
    # AWS: ValidateTemplate checks a template's syntax and structure (that it
    # parses, and has Resources) and answers with its description and
    # parameters; it does not lint. moto runs cfn-lint and answers its first
    # finding, warnings included, as a ValidationError. This checks as AWS does.
    import json as json_module

    import yaml
    from moto.cloudformation import models, utils

    from moto.cloudformation.exceptions import ValidationError

    def Problem(message):
        raise ValidationError(message=message)

    def validate_template(self, template):
        yaml.add_multi_constructor("", utils.yaml_tag_constructor)
        try:
            doc = yaml.load(template, Loader=yaml.Loader)
        except yaml.YAMLError as e:
            try:
                doc = json_module.loads(template)
            except ValueError:
                mark = getattr(e, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                return [Problem(f"Template format error: YAML not well-formed.{where}")]
        if not isinstance(doc, dict) or not doc.get("Resources"):
            return [Problem("Template format error: At least one Resources member must be defined.")]
        return []

    models.CloudFormationBackend.validate_template = validate_template


def patch_nested_change_sets():
    # AWS: a change set created with IncludeNestedStacks makes a change set
    # for each nested stack it modifies; the root's change row for it names
    # that change set (ChangeSetId). A nested change set that fails (an
    # unresolved !Ref, say) fails the root with "Nested change set <arn> was
    # not successfully created: Currently in FAILED.", its own reason kept in
    # the nested one. Deleting the root deletes its nested change sets. moto
    # ignores IncludeNestedStacks. This makes nested change sets one level
    # deep, for nested stacks an update modifies (not for a root's CREATE);
    # the row names the nested stack (PhysicalResourceId), as on AWS.
    import re

    import yaml
    from moto.cloudformation import models, parsing, responses, utils

    pseudo = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::StackId", "AWS::Partition",
              "AWS::URLSuffix", "AWS::NoValue", "AWS::NotificationARNs"}

    def unresolved(doc):
        known = set(doc.get("Parameters") or {}) | set(doc.get("Resources") or {}) | pseudo
        found = []

        def walk(v):
            if isinstance(v, dict):
                for k, arg in v.items():
                    if k == "Ref" and isinstance(arg, str):
                        found.append(arg)
                    elif k == "Fn::GetAtt":
                        target = arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
                        found.append(target)
                    elif k == "Fn::Sub":
                        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                        for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                            if name not in local:
                                found.append(name.split(".", 1)[0])
                        walk(local)
                    else:
                        walk(arg)
            elif isinstance(v, list):
                for item in v:
                    walk(item)

        walk(doc.get("Resources"))
        walk(doc.get("Outputs"))
        return sorted({f for f in found if f not in known})

    def nest(backend, cs):
        cs.nested_ids = []
        for change in cs.changes:
            if change.resource_type != "AWS::CloudFormation::Stack" or change.action != "Modify":
                continue
            nested = cs.stack.resource_map._parsed_resources.get(change.logical_resource_id)
            url = getattr(nested, "template_url", None)
            if url is None:
                continue
            body = utils.get_stack_from_s3_url(url, account_id=backend.account_id, partition="aws")
            name = f"{cs.change_set_name}-{change.logical_resource_id}"[:100]
            cid = utils.generate_changeset_id(name, backend.region_name, backend.account_id)
            try:
                yaml.add_multi_constructor("", utils.yaml_tag_constructor)
                missing = unresolved(models.Stack.parse_template(body))
                if missing:
                    raise ValueError("Template format error: Unresolved resource dependencies "
                                     f"[{', '.join(missing)}] in the Resources block of the template")
                ncs = models.ChangeSet("UPDATE", cid, name, nested, body, nested.parameters, "")
                ncs.status, ncs.execution_status = "CREATE_COMPLETE", "AVAILABLE"
            except Exception as e:
                ncs = models.ChangeSet("UPDATE", cid, name, nested, nested.template, nested.parameters, "")
                ncs.changes = []
                ncs.status, ncs.execution_status, ncs.status_reason = "FAILED", "UNAVAILABLE", str(e)
                cs.status, cs.execution_status = "FAILED", "UNAVAILABLE"
                cs.status_reason = f"Nested change set {cid} was not successfully created: Currently in FAILED."
            ncs.parent_change_set_id = ncs.root_change_set_id = cs.change_set_id
            change.change_set_id = cid
            change.physical_resource_id = nested.stack_id
            backend.change_sets[cid] = ncs
            cs.nested_ids.append(cid)

    original = responses.CloudFormationResponse.create_change_set

    def create_change_set(self):
        result = original(self)
        if self._get_bool_param("IncludeNestedStacks", False):
            backend = self.cloudformation_backend
            stack, name = self._get_param("StackName"), self._get_param("ChangeSetName")
            made = [cs for cs in backend.change_sets.values()
                    if cs.change_set_name == name and cs.stack_name == stack and not hasattr(cs, "nested_ids")]
            for cs in made:
                if cs.change_set_type == "UPDATE" and cs.status == "CREATE_COMPLETE":
                    nest(backend, cs)
        return result

    responses.CloudFormationResponse.create_change_set = create_change_set

    original_delete = models.CloudFormationBackend.delete_change_set

    def delete_change_set(self, change_set_name, *args, **kwargs):
        for cs in list(self.change_sets.values()):
            if change_set_name in (cs.change_set_id, cs.change_set_name):
                for nested in getattr(cs, "nested_ids", []):
                    self.change_sets.pop(nested, None)
        return original_delete(self, change_set_name, *args, **kwargs)

    models.CloudFormationBackend.delete_change_set = delete_change_set


def patch_assumed_roles_listing():
    # Test-only: GET /_artifact/assumed-roles lists every role session the
    # server handed out (session name, external id, role), so a test can see
    # that credentials were asked for again. moto's /moto-api/data.json would
    # too, but it reads every attribute of every model and fails on Lambda's.
    import json
    from moto.moto_server import werkzeug_app
    from moto.sts.models import sts_backends

    original = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        if environ.get("PATH_INFO", "") != "/_artifact/assumed-roles":
            return original(self, environ, start_response)
        sessions = []
        for account_id in list(sts_backends.keys()):
            for backend in list(sts_backends[account_id].values()):
                for r in getattr(backend, "assumed_roles", []):
                    sessions.append({"session_name": r.session_name, "external_id": r.external_id, "role_arn": r.role_arn, "expiration": str(r.expiration)})
        out = json.dumps(sessions).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    werkzeug_app.DomainDispatcherApplication.__call__ = call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()

    patch_change_set_outputs()
    patch_invalidation_status()
    patch_update_function_code_missing_key()
    patch_template_url_on_loopback()
    patch_copy_of_a_multipart_object_checksum()
    patch_conditional_put_atomic()
    patch_kms_sign_digest()
    patch_resource_failures_roll_back()
    patch_function_layers_from_templates()
    patch_cloudwatch_rpc_v2_cbor()
    patch_assumed_roles_listing()
    patch_create_change_set_over_review()
    patch_change_set_not_found()
    patch_create_change_set_client_token()
    patch_execute_change_set_client_request_token()
    patch_resource_types_moto_lacks()
    patch_get_att_first_dot()
    patch_conditional_outputs()
    patch_nested_stacks()
    patch_validate_template_syntax_only()
    patch_nested_change_sets()

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
