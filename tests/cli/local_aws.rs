//! The local AWS server every AWS test talks to: moto (pinned, patched by
//! `scripts/local-aws`), started once per test binary on a free loopback port.
//! It stops when this process exits: it reads its stdin, which closes then.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::common::repo;

pub(crate) struct LocalAws {
    pub endpoint: String,
    _child: Mutex<(Child, ChildStdin)>,
}

static SERVER: OnceLock<LocalAws> = OnceLock::new();

/// The running server (started on first use).
pub(crate) fn server() -> &'static LocalAws {
    SERVER.get_or_init(|| {
        let mut child = Command::new(repo().join("scripts/local-aws"))
            .args(["serve", "--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/local-aws");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("local AWS server did not start: {line:?}"));
        LocalAws {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new((child, stdin)),
        }
    })
}

/// A name no other test uses, valid as a bucket or stack name.
pub(crate) fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Environment that points a process at the local server and nowhere else.
pub(crate) fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ENDPOINT_URL", &server().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("PROJECT_NAME")
        .env_remove("ENVIRONMENT")
        .env_remove("RUST_LOG")
}

/// Runs `artifact` in `dir` against the local server.
pub(crate) fn artifact_aws(dir: &Path, args: &[&str]) -> Output {
    artifact_aws_env(dir, args, &[])
}

/// Runs `artifact` in `dir` against the local server, with more environment.
pub(crate) fn artifact_aws_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    aws_env(&mut cmd)
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run artifact")
}

/// Runs a Python snippet with boto3 (an independent client) against the local
/// server; `s3` is a ready client. Returns what it printed as JSON.
pub(crate) fn boto(script: &str, args: &[&str]) -> serde_json::Value {
    let python = repo().join(".venv/bin/python");
    let prelude = "import sys, json, boto3\ns3 = boto3.client('s3')\ncfn = boto3.client('cloudformation')\nlam = boto3.client('lambda')\n";
    let mut cmd = Command::new(python);
    let out = aws_env(&mut cmd)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args(args)
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// A new, empty bucket.
pub(crate) fn bucket(what: &str) -> String {
    server();
    let name = unique(what);
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&name]);
    name
}

/// The launcher's patches make moto answer as AWS does where artifact depends on it.
#[test]
fn the_local_server_answers_as_aws_where_patched() {
    let name = unique("patches");
    let v = boto(
        r#"
import io, zipfile
name = sys.argv[1]
cfn = boto3.client('cloudformation')
template = json.dumps({
    'Resources': {'Topic': {'Type': 'AWS::SNS::Topic'}},
    'Outputs': {'TopicArn': {'Value': {'Ref': 'Topic'}}},
})
cfn.create_change_set(StackName=name, ChangeSetName='c1', ChangeSetType='CREATE', TemplateBody=template)
cfn.execute_change_set(StackName=name, ChangeSetName='c1')
cfn.execute_change_set(StackName=name, ChangeSetName='c1', ClientRequestToken='c1')
outputs = cfn.describe_stacks(StackName=name)['Stacks'][0].get('Outputs', [])

cf = boto3.client('cloudfront')
dist = cf.create_distribution(DistributionConfig={
    'CallerReference': name, 'Comment': '', 'Enabled': True,
    'Origins': {'Quantity': 1, 'Items': [{'Id': 'o', 'DomainName': 'example.s3.amazonaws.com',
                'S3OriginConfig': {'OriginAccessIdentity': ''}}]},
    'DefaultCacheBehavior': {'TargetOriginId': 'o', 'ViewerProtocolPolicy': 'allow-all',
                'ForwardedValues': {'QueryString': False, 'Cookies': {'Forward': 'none'}},
                'MinTTL': 0, 'TrustedSigners': {'Enabled': False, 'Quantity': 0}},
})['Distribution']
inv = cf.create_invalidation(DistributionId=dist['Id'], InvalidationBatch={
    'Paths': {'Quantity': 1, 'Items': ['/index.html']}, 'CallerReference': name})['Invalidation']
status = cf.get_invalidation(DistributionId=dist['Id'], Id=inv['Id'])['Invalidation']['Status']

iam = boto3.client('iam')
role = iam.create_role(RoleName=name, AssumeRolePolicyDocument='{}')['Role']['Arn']
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('index.py', 'def handler(e, c): return 1\n')
lam = boto3.client('lambda')
lam.create_function(FunctionName=name, Runtime='python3.12', Role=role, Handler='index.handler',
                    Code={'ZipFile': buf.getvalue()})
s3.create_bucket(Bucket=name)
try:
    lam.update_function_code(FunctionName=name, S3Bucket=name, S3Key='missing.zip')
    missing = 'accepted'
except lam.exceptions.InvalidParameterValueException:
    missing = 'refused'
again = cfn.create_change_set(StackName=name, ChangeSetName='c1', ChangeSetType='UPDATE', TemplateBody=template, ClientToken='c1')
same = len([c for c in cfn.list_change_sets(StackName=name)['Summaries'] if c['ChangeSetName'] == 'c1'])
try:
    cfn.delete_change_set(StackName=name, ChangeSetName='never-made')
    gone = 'deleted'
except cfn.exceptions.ClientError as e:
    gone = e.response['Error']['Code']
print(json.dumps({'outputs': [o['OutputKey'] for o in outputs], 'status': status, 'missing': missing, 'gone': gone, 'same': same,
                  'stack': cfn.describe_stacks(StackName=name)['Stacks'][0]['StackStatus']}))
"#,
        &[&name],
    );
    assert_eq!(v["outputs"], serde_json::json!(["TopicArn"]), "{v}");
    assert_eq!(v["status"], "Completed", "{v}");
    assert_eq!(v["missing"], "refused", "{v}");
    assert_eq!(v["gone"], "ChangeSetNotFound", "{v}");
    assert_eq!(
        v["same"], 1,
        "a retried create makes no second change set: {v}"
    );
}

/// A copy of an object uploaded in parts carries the whole object's SHA-256,
/// as on AWS, so a checksum-validating read of the copy succeeds.
#[test]
fn a_copy_of_a_multipart_object_reads_back_with_its_checksum() {
    let name = bucket("copy");
    let v = boto(
        r#"
import hashlib, base64, os
b = sys.argv[1]
data = os.urandom(6 * 1024 * 1024)
up = s3.create_multipart_upload(Bucket=b, Key='k', ChecksumAlgorithm='SHA256')['UploadId']
parts = []
for n, part in enumerate([data[:5242880], data[5242880:]], 1):
    c = base64.b64encode(hashlib.sha256(part).digest()).decode()
    e = s3.upload_part(Bucket=b, Key='k', UploadId=up, PartNumber=n, Body=part, ChecksumSHA256=c)['ETag']
    parts.append({'PartNumber': n, 'ETag': e, 'ChecksumSHA256': c})
s3.complete_multipart_upload(Bucket=b, Key='k', UploadId=up, MultipartUpload={'Parts': parts})
s3.copy_object(Bucket=b, Key='copy', CopySource=b + '/k')
got = s3.get_object(Bucket=b, Key='copy', ChecksumMode='ENABLED')
body = got['Body'].read()
print(json.dumps({'same': body == data, 'sha': got.get('ChecksumSHA256') == base64.b64encode(hashlib.sha256(data).digest()).decode()}))
"#,
        &[&name],
    );
    assert_eq!(v, serde_json::json!({"same": true, "sha": true}));
}

/// Nested stacks deploy on the local server as on AWS: outputs through
/// `!GetAtt <Nested>.Outputs.<Name>` (split on the first dot, also in !Sub),
/// conditional outputs skipped, an update in place when only the template
/// behind an unchanged URL changed, a nested failure explained in the nested
/// stack's events, a failed create rolled back without leaving its named
/// resources behind, and ValidateTemplate checking syntax only.
#[test]
fn the_local_server_deploys_nested_stacks_as_aws_does() {
    let name = unique("nested");
    let v = boto(
        r#"
iam = boto3.client('iam')
name = sys.argv[1]
s3.create_bucket(Bucket=name)
def child(topic, extra=''):
    return f'''
Parameters:
  Prefix: {{Type: String}}
Conditions:
  Never: !Equals [a, b]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties: {{TopicName: !Sub "${{Prefix}}-{topic}"}}
  Pool:
    Type: AWS::Cognito::IdentityPool
    Properties: {{AllowUnauthenticatedIdentities: false}}
{extra}
Outputs:
  TopicArn: {{Value: !Ref Topic}}
  PoolId: {{Value: !Ref Pool}}
  Hidden:
    Condition: Never
    Value: !GetAtt Missing.Arn
    Export: {{Name: !Sub "${{Prefix}}-hidden"}}
'''
def root(stack):
    return f'''
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties: {{RoleName: {stack}-role, AssumeRolePolicyDocument: {{}}}}
  Child:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://{name}.s3.amazonaws.com/{stack}.yaml
      Parameters: {{Prefix: {stack}}}
Outputs:
  FromChild: {{Value: !GetAtt Child.Outputs.TopicArn}}
  Subbed: {{Value: !Sub "x-${{Child.Outputs.TopicArn}}"}}
'''
def deploy(stack, kind, n):
    cs = f'{stack}-c{n}'
    cfn.create_change_set(StackName=stack, ChangeSetName=cs, ChangeSetType=kind, TemplateBody=root(stack))
    d = cfn.describe_change_set(StackName=stack, ChangeSetName=cs)
    if d['Status'] == 'CREATE_COMPLETE':
        cfn.execute_change_set(StackName=stack, ChangeSetName=cs)
    return d['Status']
def nested(stack):
    return [r['PhysicalResourceId'] for r in cfn.describe_stack_resources(StackName=stack)['StackResources']
            if r['LogicalResourceId'] == 'Child'][0]
def outputs(stack):
    s = cfn.describe_stacks(StackName=stack)['Stacks'][0]
    return s['StackStatus'], {o['OutputKey']: o['OutputValue'] for o in s.get('Outputs', [])}
out = {}
s3.put_object(Bucket=name, Key=f'{name}.yaml', Body=child('a'))
deploy(name, 'CREATE', 1)
out['root'] = outputs(name)
first = nested(name)
out['nested'] = outputs(first)
out['parent'] = cfn.describe_stacks(StackName=first)['Stacks'][0].get('ParentId')
out['unchanged'] = deploy(name, 'UPDATE', 2)
s3.put_object(Bucket=name, Key=f'{name}.yaml', Body=child('b'))
out['behind_url'] = deploy(name, 'UPDATE', 3)
out['in_place'] = nested(name) == first
out['updated'] = outputs(name)
bad = '''
  Fn:
    Type: AWS::Lambda::Function
    Properties: {FunctionName: %s-fn, Runtime: python3.6, Handler: i.h, Role: arn:aws:iam::123456789012:role/x, Code: {ZipFile: x}}
''' % name
s3.put_object(Bucket=name, Key=f'{name}.yaml', Body=child('c', bad))
deploy(name, 'UPDATE', 4)
out['failed'] = outputs(name)[0]
out['root_events'] = [(e['LogicalResourceId'], e['ResourceStatus'], (e.get('ResourceStatusReason') or '')[:40])
                      for e in cfn.describe_stack_events(StackName=name)['StackEvents'] if e['ResourceStatus'].endswith('FAILED')]
out['nested_events'] = [(e['LogicalResourceId'], e['ResourceStatus']) for e in cfn.describe_stack_events(StackName=first)['StackEvents']
                        if e['ResourceStatus'].endswith('FAILED')]
other = name + 'x'
s3.put_object(Bucket=name, Key=f'{other}.yaml', Body=child('d', bad.replace(name, other)))
deploy(other, 'CREATE', 1)
out['create_failed'] = outputs(other)[0]
out['roles_left'] = [r['RoleName'] for r in iam.list_roles()['Roles'] if r['RoleName'] == other + '-role']
cfn.delete_stack(StackName=other)
s3.put_object(Bucket=name, Key=f'{other}.yaml', Body=child('d'))
deploy(other, 'CREATE', 2)
out['retried'] = outputs(other)[0]
# IncludeNestedStacks: a nested change set per modified nested stack; a
# failing one fails the root, naming it; deleting the root deletes it.
s3.put_object(Bucket=name, Key=f'{name}.yaml', Body=child('e', '  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref Nope}\n'))
cfn.create_change_set(StackName=name, ChangeSetName=f'{name}-n1', ChangeSetType='UPDATE', TemplateBody=root(name), IncludeNestedStacks=True)
d = cfn.describe_change_set(StackName=name, ChangeSetName=f'{name}-n1')
nested_cs = d['Changes'][0]['ResourceChange'].get('ChangeSetId')
n = cfn.describe_change_set(ChangeSetName=nested_cs)
out['nested_cs'] = [d['Status'], d['StatusReason'].startswith('Nested change set ' + nested_cs), n['Status'], n['StatusReason']]
cfn.delete_change_set(StackName=name, ChangeSetName=f'{name}-n1')
try:
    cfn.describe_change_set(ChangeSetName=nested_cs)
    out['nested_cs'].append('left')
except cfn.exceptions.ClientError as e:
    out['nested_cs'].append(e.response['Error']['Code'])
out['lint_warning'] = 'Parameters' in cfn.validate_template(TemplateBody='Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {Unknown: 1}\n')
try:
    cfn.validate_template(TemplateBody='Resources: [\n')
    out['syntax'] = 'accepted'
except cfn.exceptions.ClientError as e:
    out['syntax'] = e.response['Error']['Message']
print(json.dumps(out))
"#,
        &[&name],
    );
    let arn = |topic: &str| format!("arn:aws:sns:us-east-1:123456789012:{name}-{topic}");
    assert_eq!(v["root"][0], "CREATE_COMPLETE", "{v}");
    assert_eq!(v["root"][1]["FromChild"], arn("a"), "{v}");
    assert_eq!(v["root"][1]["Subbed"], format!("x-{}", arn("a")), "{v}");
    assert_eq!(v["nested"][1]["TopicArn"], arn("a"), "{v}");
    assert!(
        v["nested"][1]["PoolId"]
            .as_str()
            .is_some_and(|p| p.starts_with("us-east-1:")),
        "{v}"
    );
    assert!(v["nested"][1].get("Hidden").is_none(), "{v}");
    assert!(
        v["parent"]
            .as_str()
            .is_some_and(|p| p.contains(&format!("stack/{name}/"))),
        "{v}"
    );
    assert_eq!(v["unchanged"], "FAILED", "{v}");
    assert_eq!(v["behind_url"], "CREATE_COMPLETE", "{v}");
    assert_eq!(v["in_place"], true, "{v}");
    assert_eq!(v["updated"][1]["FromChild"], arn("b"), "{v}");
    assert_eq!(v["failed"], "UPDATE_ROLLBACK_COMPLETE", "{v}");
    assert_eq!(
        v["root_events"],
        serde_json::json!([[
            "Child",
            "UPDATE_FAILED",
            "Embedded stack arn:aws:cloudformation:us"
        ]]),
        "{v}"
    );
    assert_eq!(
        v["nested_events"],
        serde_json::json!([["Fn", "UPDATE_FAILED"]]),
        "{v}"
    );
    assert_eq!(v["create_failed"], "ROLLBACK_COMPLETE", "{v}");
    assert_eq!(v["roles_left"], serde_json::json!([]), "{v}");
    assert_eq!(v["retried"], "CREATE_COMPLETE", "{v}");
    assert_eq!(
        v["nested_cs"],
        serde_json::json!([
            "FAILED",
            true,
            "FAILED",
            "Template format error: Unresolved resource dependencies [Missing, Nope] in the Resources block of the template",
            "ChangeSetNotFound"
        ]),
        "{v}"
    );
    assert_eq!(v["lint_warning"], true, "{v}");
    assert!(
        v["syntax"]
            .as_str()
            .unwrap()
            .starts_with("Template format error"),
        "{v}"
    );
}
