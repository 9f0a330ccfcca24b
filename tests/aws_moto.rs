//! The AWS API watchers against moto (a real AWS emulator in server mode on loopback),
//! through the real binary. moto is installed by scripts/moto.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Moto {
    child: Child,
    url: String,
    python: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    moto_with(&[])
}

/// moto, with extra environment for its launcher (scripts/moto_server.py).
fn moto_with(env: &[(&str, &str)]) -> Moto {
    let out = Command::new(common::repo().join("scripts/moto"))
        .output()
        .expect("scripts/moto");
    assert!(
        out.status.success(),
        "installing moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let python = server.replace("moto_server", "python");
    let port = free_port();
    // moto with the one S3 fix the Rust SDK needs (scripts/moto_server.py).
    let child = Command::new(&python)
        .arg(common::repo().join("scripts/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        python,
    }
}

/// AWS environment for both boto3 and guardrail: fake credentials, and no instance
/// metadata lookups (nothing may leave loopback).
fn aws_env(m: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_ENDPOINT_URL", m.url.clone()),
    ]
}

/// Fake credentials and no profile or instance-metadata lookups, for runs against a
/// closed port.
const OFFLINE: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sweep --aws` against `endpoint` with offline credentials.
fn sweep_offline(db: &common::Db, endpoint: &str) -> common::Run {
    db.run_env(
        &[
            "sweep",
            "--aws",
            "--format",
            "json",
            "--endpoint-url",
            endpoint,
        ],
        OFFLINE,
    )
}

fn boto(m: &Moto, script: &str) {
    let prelude = "import boto3, json\niam = boto3.client('iam')\nec2 = boto3.client('ec2')\ns3 = boto3.client('s3')\n";
    let out = Command::new(&m.python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .envs(aws_env(m))
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sweep(db: &common::Db, m: &Moto) -> Value {
    let r = sweep_via(db, m, &m.url, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r.json()
}

/// `sweep --aws` through `endpoint` (moto itself or a proxy in front of it).
fn sweep_via(db: &common::Db, m: &Moto, endpoint: &str, extra: &[&str]) -> common::Run {
    let mut env = aws_env(m);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", endpoint.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec![
        "sweep",
        "--aws",
        "--regions",
        "us-east-1",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    db.run_env(&args, &env)
}

/// The fault-injecting, operation-logging proxy (scripts/faultproxy.py) in front of moto.
struct Proxy {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy(m: &Moto, fault_every: u32) -> Proxy {
    let every = fault_every.to_string();
    proxy_with(
        m,
        &[
            "--fault-every",
            &every,
            "--faults",
            "throttle,500,reset,delay",
            "--delay-seconds",
            "1",
        ],
    )
}

/// scripts/faultproxy.py in front of moto with `args`, logging every call.
fn proxy_with(m: &Moto, args: &[&str]) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let log = dir.path().join("ops.jsonl");
    let child = Command::new(&m.python)
        .arg(common::repo().join("scripts/faultproxy.py"))
        .args(["--listen-port", "0", "--upstream", &m.url])
        .arg("--port-file")
        .arg(&port_file)
        .args(args)
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultproxy");
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            break p.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "faultproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    Proxy {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    }
}

impl Proxy {
    /// Every logged request: (service, operation, fault).
    fn operations(&self) -> Vec<(String, String, Option<String>)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["service"].as_str().unwrap_or_default().to_owned(),
                    v["operation"].as_str().unwrap_or_default().to_owned(),
                    v["fault"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}

fn open(db: &common::Db, rule: &str) -> Vec<String> {
    db.run(&["findings", "--rule", rule, "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resource"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// An account with something of every watched kind, including the planted
/// misconfigurations the rules must find.
const SEED: &str = r#"
iam.create_role(RoleName='open-role', AssumeRolePolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'AWS':'*'},'Action':'sts:AssumeRole'}]}))
iam.attach_role_policy(RoleName='open-role', PolicyArn='arn:aws:iam::aws:policy/ReadOnlyAccess')
iam.create_user(UserName='admin-user')
iam.put_user_policy(UserName='admin-user', PolicyName='everything', PolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Action':'*','Resource':'*'}]}))
iam.create_user(UserName='reader')
iam.create_user(UserName='alice')
iam.create_login_profile(UserName='alice', Password='Correct-Horse-1')
iam.create_access_key(UserName='alice')
iam.create_access_key(UserName='alice')
vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock='10.9.1.0/24')['Subnet']['SubnetId']
igw = ec2.create_internet_gateway()['InternetGateway']['InternetGatewayId']
ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
sg = ec2.create_security_group(GroupName='ssh-open', Description='x', VpcId=vpc)['GroupId']
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{'IpProtocol':'tcp','FromPort':22,'ToPort':22,'IpRanges':[{'CidrIp':'0.0.0.0/0'}]}])
inst = ec2.run_instances(ImageId='ami-12c6146b', MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[sg], MetadataOptions={'HttpTokens':'optional','HttpEndpoint':'enabled'}, TagSpecifications=[{'ResourceType':'instance','Tags':[{'Key':'Name','Value':'imds-v1'}]}])['Instances'][0]['InstanceId']
s3.create_bucket(Bucket='public-bucket')
s3.put_bucket_policy(Bucket='public-bucket', Policy=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::public-bucket/*'}]}))
s3.create_bucket(Bucket='eu-bucket', CreateBucketConfiguration={'LocationConstraint':'eu-west-1'})
s3.put_bucket_versioning(Bucket='eu-bucket', VersioningConfiguration={'Status':'Enabled'})
s3.put_bucket_encryption(Bucket='eu-bucket', ServerSideEncryptionConfiguration={'Rules':[{'ApplyServerSideEncryptionByDefault':{'SSEAlgorithm':'AES256'}}]})
s3.put_bucket_tagging(Bucket='eu-bucket', Tagging={'TagSet':[{'Key':'owner','Value':'data'}]})
sqs = boto3.client('sqs')
def queue(name, condition):
    url = sqs.create_queue(QueueName=name, tags={'team': 'orders'})['QueueUrl']
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
    statement = {'Effect':'Allow','Principal':'*','Action':'sqs:SendMessage','Resource':arn}
    if condition:
        statement['Condition'] = condition
    sqs.set_queue_attributes(QueueUrl=url, Attributes={'Policy': json.dumps({'Version':'2012-10-17','Statement':[statement]})})
queue('public-queue', None)
queue('org-queue', {'StringEquals': {'aws:PrincipalOrgID': 'o-a1b2c3d4e5'}})
ct = boto3.client('cloudtrail')
s3.create_bucket(Bucket='trail-logs')
ct.create_trail(Name='org-trail', S3BucketName='trail-logs', IsMultiRegionTrail=True, EnableLogFileValidation=True)
ct.start_logging(Name='org-trail')
ct.create_trail(Name='stopped-trail', S3BucketName='trail-logs')
kms = boto3.client('kms')
for name, rotate in (('rotated', True), ('not-rotated', False)):
    key = kms.create_key(Description=name, Tags=[{'TagKey':'team','TagValue':'payments'}])['KeyMetadata']['KeyId']
    kms.create_alias(AliasName='alias/' + name, TargetKeyId=key)
    if rotate:
        kms.enable_key_rotation(KeyId=key)
# One public (or shared with an unknown account) and one private example of each type
# with a native lister beyond IAM, S3 and EC2 networking.
import io, zipfile
acct = boto3.client('sts').get_caller_identity()['Account']
sns = boto3.client('sns')
def topic(name, condition):
    arn = sns.create_topic(Name=name, Tags=[{'Key':'team','Value':'alerts'}])['TopicArn']
    st = {'Effect':'Allow','Principal':'*','Action':'sns:Subscribe','Resource':arn}
    if condition: st['Condition'] = condition
    sns.set_topic_attributes(TopicArn=arn, AttributeName='Policy', AttributeValue=json.dumps({'Version':'2012-10-17','Statement':[st]}))
topic('public-topic', None)
topic('account-topic', {'StringEquals': {'aws:SourceOwner': acct}})
lam = boto3.client('lambda')
role = iam.create_role(RoleName='fn-role', AssumeRolePolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'Service':'lambda.amazonaws.com'},'Action':'sts:AssumeRole'}]}))['Role']['Arn']
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z: z.writestr('index.py', 'def handler(e, c):\n    return 1\n')
for name in ('public-fn', 'bucket-fn'):
    lam.create_function(FunctionName=name, Runtime='python3.12', Role=role, Handler='index.handler', Code={'ZipFile': buf.getvalue()}, Tags={'team':'web'})
lam.add_permission(FunctionName='public-fn', StatementId='anyone', Action='lambda:InvokeFunction', Principal='*')
lam.add_permission(FunctionName='bucket-fn', StatementId='s3', Action='lambda:InvokeFunction', Principal='s3.amazonaws.com', SourceArn='arn:aws:s3:::uploads', SourceAccount=acct)
sm = boto3.client('secretsmanager')
for name in ('public-secret', 'private-secret'):
    arn = sm.create_secret(Name=name, SecretString='s3cr3t')['ARN']
    principal = '*' if name == 'public-secret' else {'AWS': f'arn:aws:iam::{acct}:role/fn-role'}
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':principal,'Action':'secretsmanager:GetSecretValue','Resource':'*'}]}))
ecr = boto3.client('ecr')
for name in ('public-repo', 'private-repo'):
    ecr.create_repository(repositoryName=name)
ecr.set_repository_policy(repositoryName='public-repo', policyText=json.dumps({'Version':'2012-10-17','Statement':[{'Sid':'pull','Effect':'Allow','Principal':'*','Action':['ecr:GetDownloadUrlForLayer','ecr:BatchGetImage']}]}))
ecr.set_repository_policy(repositoryName='private-repo', policyText=json.dumps({'Version':'2012-10-17','Statement':[{'Sid':'pull','Effect':'Allow','Principal':{'AWS':f'arn:aws:iam::{acct}:root'},'Action':['ecr:BatchGetImage']}]}))
# The encrypted volume names a customer key: with the default key, moto creates
# alias/aws/ebs as a CUSTOMER key without rotation (AWS marks it AWS, rotated by AWS).
rotated_key = [a['TargetKeyId'] for a in kms.list_aliases()['Aliases'] if a['AliasName'] == 'alias/rotated'][0]
def volume(name, key):
    extra = {'Encrypted': True, 'KmsKeyId': key} if key else {'Encrypted': False}
    return ec2.create_volume(AvailabilityZone='us-east-1a', Size=8, TagSpecifications=[{'ResourceType':'volume','Tags':[{'Key':'Name','Value':name}]}], **extra)['VolumeId']
plain = volume('plain-volume', None)
volume('encrypted-volume', rotated_key)
for name, perm in (('public-snapshot', {'GroupNames':['all']}), ('shared-snapshot', {'UserIds':['999999999999']}), ('private-snapshot', None)):
    sid = ec2.create_snapshot(VolumeId=plain, TagSpecifications=[{'ResourceType':'snapshot','Tags':[{'Key':'Name','Value':name}]}])['SnapshotId']
    if perm: ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute='createVolumePermission', OperationType='add', **perm)
for name, perm in (('public-ami', [{'Group':'all'}]), ('shared-ami', [{'UserId':'999999999999'}]), ('private-ami', None)):
    iid = ec2.create_image(InstanceId=inst, Name=name)['ImageId']
    if perm: ec2.modify_image_attribute(ImageId=iid, LaunchPermission={'Add': perm})
"#;

fn counts(s: &Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        s["created"].as_u64(),
        s["modified"].as_u64(),
        s["deleted"].as_u64(),
    )
}

#[test]
fn moto_account_is_swept_judged_and_its_changes_recorded() {
    let m = moto();
    boto(&m, SEED);
    let db = common::sqlite();
    let s = sweep(&db, &m);
    assert_eq!(s["errors"], 0, "{s}");
    let items = db.run(&["items", "--format", "json"]).json();
    let types: std::collections::BTreeSet<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource_type"].as_str().unwrap())
        .collect();
    for t in [
        "AWS::IAM::User",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::S3::Bucket",
        "AWS::S3::AccountPublicAccessBlock",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::Instance",
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::NetworkAcl",
        "AWS::EC2::RouteTable",
        "AWS::EC2::InternetGateway",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::IAM::Account",
        "AWS::CloudTrail::Trail",
    ] {
        assert!(types.contains(t), "no {t} among {types:?}");
    }
    // SQS and KMS in AWS Config's shape, with the facts Config's own KMS item lacks.
    let q = db.run(&["show", "public-queue", "--format", "json"]).json();
    let qc = &q["document"]["config"]["configuration"];
    assert!(
        qc["QueueArn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(":public-queue"),
        "{q}"
    );
    assert_eq!(
        qc["Policy"]["Statement"][0]["Principal"], "*",
        "the policy is decoded: {q}"
    );
    assert_eq!(q["document"]["tags"]["team"], "orders");
    let k = db
        .run(&["show", "alias/not-rotated", "--format", "json"])
        .json();
    let ks = &k["document"]["config"]["supplementaryConfiguration"];
    assert_eq!(ks["KeyRotationStatus"], false, "{k}");
    assert!(ks["Policy"]["Statement"].is_array(), "{k}");
    assert_eq!(
        k["document"]["config"]["configuration"]["keyManager"],
        "CUSTOMER"
    );
    // Exactly the public queue and the unrotated key are flagged.
    assert_eq!(
        open(&db, "sqs/queue_policy_public"),
        vec!["public-queue".to_owned()]
    );
    assert_eq!(
        open(&db, "kms/key_rotation_disabled"),
        vec!["alias/not-rotated".to_owned()]
    );
    // The account itself (iam:GetAccountSummary, iam:GetAccountPasswordPolicy): moto's
    // root user has no MFA, and no password policy is set, so AWS's defaults apply.
    assert_eq!(open(&db, "iam/account_password_policy").len(), 1);
    assert_eq!(open(&db, "iam/account_root_user").len(), 1);
    // CloudTrail with its logging status (GetTrailStatus), which AWS Config lacks.
    assert_eq!(
        open(&db, "cloudtrail/trail_logging_off"),
        vec!["stopped-trail".to_owned()]
    );
    assert!(open(&db, "cloudtrail/trail_log_validation_off").contains(&"stopped-trail".to_owned()));
    assert!(!open(&db, "cloudtrail/trail_log_validation_off").contains(&"org-trail".to_owned()));
    // Buckets carry their own region; the AWS managed policy appears because it is attached.
    let eu = db.run(&["show", "eu-bucket", "--format", "json"]).json();
    assert_eq!(eu["item"]["region"], "eu-west-1", "{eu}");
    let supp = &eu["document"]["config"]["supplementaryConfiguration"];
    assert_eq!(
        supp["BucketVersioningConfiguration"]["status"], "Enabled",
        "{supp}"
    );
    assert_eq!(
        supp["ServerSideEncryptionConfiguration"]["rules"][0]["applyServerSideEncryptionByDefault"]
            ["sseAlgorithm"],
        "AES256"
    );
    assert_eq!(eu["document"]["tags"]["owner"], "data");
    let ro = db.run(&["show", "ReadOnlyAccess", "--format", "json"]);
    assert_eq!(ro.code, 0, "{}{}", ro.stdout, ro.stderr);

    // The same rules fire on API items as on AWS Config items.
    assert!(open(&db, "iam/role_trust_anyone").contains(&"open-role".to_owned()));
    assert!(open(&db, "iam/policy_full_admin").contains(&"admin-user".to_owned()));
    assert!(open(&db, "iam/user_console_without_mfa").contains(&"alice".to_owned()));
    assert!(open(&db, "iam/user_access_keys").contains(&"alice".to_owned()));
    assert!(open(&db, "ec2/sg_admin_ports_open").contains(&"ssh-open".to_owned()));
    assert!(open(&db, "ec2/instance_imdsv1").contains(&"imds-v1".to_owned()));
    assert!(open(&db, "s3/bucket_policy_public").contains(&"public-bucket".to_owned()));
    assert!(!open(&db, "s3/bucket_policy_public").contains(&"eu-bucket".to_owned()));
    assert!(!open(&db, "s3/bucket_versioning").contains(&"eu-bucket".to_owned()));

    // Nothing changed: nothing recorded.
    let s = sweep(&db, &m);
    assert_eq!(counts(&s), (Some(0), Some(0), Some(0)), "{s}");

    // Add an ingress rule, make a bucket public, attach a policy, delete a user.
    boto(
        &m,
        r#"
sg = [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == 'ssh-open'][0]['GroupId']
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{'IpProtocol':'tcp','FromPort':3389,'ToPort':3389,'IpRanges':[{'CidrIp':'0.0.0.0/0'}]}])
s3.put_bucket_policy(Bucket='eu-bucket', Policy=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::eu-bucket/*'}]}))
iam.attach_user_policy(UserName='reader', PolicyArn='arn:aws:iam::aws:policy/ReadOnlyAccess')
iam.delete_user_policy(UserName='admin-user', PolicyName='everything')
iam.delete_user(UserName='admin-user')
"#,
    );
    let s = sweep(&db, &m);
    assert_eq!(
        counts(&s),
        (Some(0), Some(3), Some(1)),
        "exactly the four changes: {s}"
    );
    let changed: Vec<String> = db
        .run(&["changes", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["item"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    for n in ["ssh-open", "eu-bucket", "reader", "admin-user"] {
        assert!(changed.contains(&n.to_owned()), "{n} not among {changed:?}");
    }
    let diff = db.run(&["diff", "ssh-open", "--format", "json"]).json();
    let changes = diff["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["new"]["fromPort"] == 3389),
        "{changes:?}"
    );
    assert!(
        !open(&db, "iam/policy_full_admin").contains(&"admin-user".to_owned()),
        "deleted user's finding is fixed"
    );
    assert!(open(&db, "s3/bucket_policy_public").contains(&"eu-bucket".to_owned()));
    assert!(
        open(&db, "ec2/sg_admin_ports_open").len() >= 2,
        "RDP now open too"
    );
}

/// One public (or shared with an unknown account) and one private example of each
/// type a native lister reads beyond IAM, S3 and EC2 networking: exactly the public
/// ones are flagged, by the same rules that judge AWS Config's items.
///
/// moto gaps (5.2.5): DescribeSnapshots ignores OwnerIds (it answers every snapshot of
/// the emulated account, which here are all ours); DescribeImages honours Owners=self.
/// Lambda functions are created without Docker (nothing is invoked).
#[test]
fn of_each_new_type_exactly_the_public_example_is_flagged() {
    let m = moto();
    boto(&m, SEED);
    let db = common::sqlite();
    let s = sweep(&db, &m);
    assert_eq!(s["errors"], 0, "{s}");
    let exactly = |rule: &str, names: &[&str]| {
        let mut got = open(&db, rule);
        got.sort();
        assert_eq!(got, names, "{rule}");
    };
    // Resource policies.
    exactly("sqs/queue_policy_public", &["public-queue"]);
    exactly("sns/topic_policy_public", &["public-topic"]);
    exactly("sns/topic_policy_cross_account", &[]);
    exactly("lambda/function_policy_public", &["public-fn"]);
    exactly("lambda/function_policy_service_unscoped", &[]);
    exactly("secretsmanager/secret_policy_public", &["public-secret"]);
    exactly("secretsmanager/secret_policy_cross_account", &[]);
    exactly("ecr/repository_policy_public", &["public-repo"]);
    exactly("ecr/repository_policy_cross_account", &[]);
    exactly("kms/key_policy_public", &[]);
    // Snapshots and images shared publicly, or with an account nobody classified.
    exactly("ec2/snapshot_public", &["public-snapshot"]);
    exactly("ec2/snapshot_cross_account", &["shared-snapshot"]);
    exactly("ec2/image_public", &["public-ami"]);
    exactly("ec2/image_cross_account", &["shared-ami"]);
    // Hygiene: the unencrypted volume, not the encrypted one (moto also gives the
    // instance an unencrypted, unnamed root volume, which is rightly flagged too).
    let volumes = open(&db, "ec2/volume_not_encrypted");
    assert!(volumes.contains(&"plain-volume".to_owned()), "{volumes:?}");
    assert!(
        !volumes.contains(&"encrypted-volume".to_owned()),
        "{volumes:?}"
    );
    exactly("kms/key_rotation_disabled", &["alias/not-rotated"]);
    exactly("cloudtrail/trail_logging_off", &["stopped-trail"]);

    // The items carry what AWS Config's would, and what it lacks.
    let f = db.run(&["show", "public-fn", "--format", "json"]).json();
    let doc = &f["document"]["config"];
    assert_eq!(doc["configuration"]["runtime"], "python3.12", "{f}");
    assert_eq!(
        doc["supplementaryConfiguration"]["Policy"]["Statement"][0]["Principal"], "*",
        "the policy is decoded: {f}"
    );
    assert!(doc["configuration"].get("environment").is_none());
    assert_eq!(f["document"]["tags"]["team"], "web");
    let sec = db
        .run(&["show", "private-secret", "--format", "json"])
        .json();
    let sdoc = &sec["document"]["config"];
    assert_eq!(sdoc["configuration"]["RotationEnabled"], false, "{sec}");
    assert!(
        sdoc["supplementaryConfiguration"]["ResourcePolicy"]["Statement"].is_array(),
        "{sec}"
    );
    assert!(
        !sec.to_string().contains("s3cr3t"),
        "never the secret value"
    );
    let snap = db
        .run(&["show", "shared-snapshot", "--format", "json"])
        .json();
    assert_eq!(
        snap["document"]["config"]["supplementaryConfiguration"]["CreateVolumePermissions"],
        serde_json::json!([{"userId": "999999999999"}]),
        "{snap}"
    );
    let ami = db.run(&["show", "public-ami", "--format", "json"]).json();
    assert_eq!(
        ami["document"]["config"]["configuration"]["public"], true,
        "{ami}"
    );

    // Classifying the account the snapshot and image are shared with as friendly
    // clears both findings on the next audit.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("friendly.toml");
    std::fs::write(
        &cfg,
        "[accounts.\"999999999999\"]\nname = \"partner\"\nclassification = \"friendly\"\n",
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let r = db.run(&["--config", &cfg, "audit", "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    exactly("ec2/snapshot_cross_account", &[]);
    exactly("ec2/image_cross_account", &[]);
    exactly("ec2/snapshot_public", &["public-snapshot"]);
}

/// Maps an operation in the proxy's log to the IAM action that allows it.
fn action(service: &str, op: &str) -> String {
    let s3 = |a: &str| format!("s3:{a}");
    match (service, op) {
        ("s3", "ListBuckets") => s3("ListAllMyBuckets"),
        ("s3", "GetPublicAccessBlock") => s3("GetBucketPublicAccessBlock"),
        ("s3", "GetBucketEncryption") => s3("GetEncryptionConfiguration"),
        ("s3", "ListObjectsV2") => s3("ListBucket"),
        ("s3control", "GetPublicAccessBlock") => s3("GetAccountPublicAccessBlock"),
        (svc, op) => format!("{svc}:{op}"),
    }
}

#[test]
fn a_full_sweep_only_reads_and_needs_nothing_beyond_the_shipped_policy() {
    let m = moto();
    boto(&m, SEED);
    let p = proxy(&m, 0);
    let db = common::sqlite();
    let r = sweep_via(&db, &m, &p.url, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let ops = p.operations();
    assert!(ops.len() > 20, "{ops:?}");
    let read = |op: &str| {
        ["List", "Get", "Describe", "Select", "BatchGet", "Head"]
            .iter()
            .any(|p| op.starts_with(p))
    };
    for (service, op, _) in &ops {
        assert!(
            read(op) || (service == "sts" && (op == "GetCallerIdentity" || op == "AssumeRole")),
            "{service}:{op} is not a read operation"
        );
    }
    let allowed = shipped_actions();
    for (service, op, _) in &ops {
        if service == "sts" {
            continue; // GetCallerIdentity needs no permission
        }
        let a = action(service, op);
        assert!(
            allowed.contains(&a),
            "the sweep called {service}:{op}, which needs {a}, missing from examples/iam-policy.json"
        );
    }
}

#[test]
fn every_third_request_faulted_converges_without_false_deletions() {
    let m = moto();
    boto(&m, SEED);
    let clean = common::sqlite();
    let baseline = sweep(&clean, &m);
    assert_eq!(baseline["errors"], 0, "{baseline}");
    let p = proxy(&m, 3);
    // Throttling, 500s, resets and delays on every third request: retries absorb them;
    // whatever they cannot absorb is an error, never a deletion.
    let r = sweep_via(&clean, &m, &p.url, &[]);
    let s = r.json();
    assert_eq!(counts(&s), (Some(0), Some(0), Some(0)), "{s}");
    let faults = p.operations().iter().filter(|o| o.2.is_some()).count();
    assert!(faults >= 10, "only {faults} faults were injected");

    // A fresh database swept through the faults reaches the same state.
    let faulty = common::sqlite();
    let r = sweep_via(&faulty, &m, &p.url, &[]);
    assert!(r.code == 0 || r.code == 2, "{}{}", r.stdout, r.stderr);
    let state = |db: &common::Db| -> std::collections::BTreeSet<(String, String, String)> {
        db.run(&["items", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let show = db
                    .run(&["show", &i["id"].to_string(), "--format", "json"])
                    .json();
                (
                    i["resource_type"].as_str().unwrap().to_owned(),
                    i["resource_id"].as_str().unwrap().to_owned(),
                    show["revision"]["hash"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    };
    if r.json()["errors"] == 0 {
        assert_eq!(state(&faulty), state(&clean));
    } else {
        // A listing gave up after retries: the next sweep completes it.
        let r = sweep_via(&faulty, &m, &p.url, &[]);
        assert_eq!(r.json()["deleted"], 0);
        assert_eq!(state(&faulty), state(&clean));
    }
}

#[test]
fn hundreds_of_roles_are_paged_through() {
    let m = moto();
    boto(
        &m,
        r#"
doc = json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'Service':'ec2.amazonaws.com'},'Action':'sts:AssumeRole'}]})
for i in range(250):
    iam.create_role(RoleName=f'role-{i:03}', AssumeRolePolicyDocument=doc, MaxSessionDuration=3600 + i)
"#,
    );
    let p = proxy(&m, 0);
    let db = common::sqlite();
    let r = sweep_via(&db, &m, &p.url, &["--only", "iam"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let roles = db
        .run(&["items", "--type", "AWS::IAM::Role", "--format", "json"])
        .json();
    assert_eq!(roles.as_array().unwrap().len(), 250);
    let pages = p.operations().iter().filter(|o| o.1 == "ListRoles").count();
    assert!(pages >= 3, "ListRoles pages: {pages}");
    // The last page's settings made it in too.
    let last = db.run(&["show", "role-249", "--format", "json"]).json();
    assert_eq!(
        last["document"]["config"]["configuration"]["maxSessionDuration"],
        3849
    );
}

#[test]
fn configured_accounts_are_entered_by_assumed_role() {
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!(
            "[aws]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\n\n[accounts.\"222222222222\"]\nname = \"prod\"\nclassification = \"ours\"\nrole_arn = \"arn:aws:iam::222222222222:role/guardrail-audit\"\nexternal_id = \"x-7f3a\"\n",
            m.url
        ),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let mut env = aws_env(&m);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = common::sqlite();
    let r = db.run_env(&["--config", &cfg, "accounts", "check"], &env);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("222222222222 via arn:aws:iam::222222222222:role/guardrail-audit: ok"),
        "{}",
        r.stdout
    );
    let r = db.run_env(
        &[
            "--config", &cfg, "sweep", "--only", "iam,ec2", "--format", "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let items = db.run(&["items", "--format", "json"]).json();
    let accounts: std::collections::BTreeSet<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["account"].as_str().unwrap())
        .collect();
    assert_eq!(
        accounts.into_iter().collect::<Vec<_>>(),
        vec!["222222222222"]
    );
    // An endpoint that is down: the check says so and fails.
    let down = format!("http://127.0.0.1:{}", free_port());
    let r = db.run_env(
        &[
            "--config",
            &cfg,
            "accounts",
            "check",
            "--endpoint-url",
            &down,
        ],
        &env,
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("FAILED") && r.stdout.contains("trust policy"),
        "{}",
        r.stdout
    );
}

#[test]
fn config_deliveries_are_read_from_the_delivery_bucket() {
    let m = moto();
    let day1 = common::examples("day1");
    boto(
        &m,
        &format!(
            r#"
import os
s3.create_bucket(Bucket='config-deliveries')
root = {root:?}
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        s3.upload_file(p, 'config-deliveries', 'org/' + os.path.relpath(p, root))
"#,
            root = day1.display().to_string()
        ),
    );
    let from_s3 = common::sqlite();
    let env = aws_env(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = from_s3.run_env(
        &[
            "sweep",
            "--source",
            "s3://config-deliveries/org/",
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let local = common::sqlite();
    let l = local.run(&[
        "sweep",
        "--source",
        &day1.display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(r.json()["created"], l.json()["created"]);
    assert_eq!(
        from_s3
            .run(&["findings", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        local
            .run(&["findings", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .len()
    );
    let r = from_s3.run_env(
        &[
            "sweep",
            "--source",
            "s3://no-such-bucket/x",
            "--format",
            "json",
        ],
        &env,
    );
    assert_ne!(r.code, 0);
    assert!(
        (r.stdout.clone() + &r.stderr).contains("s3://no-such-bucket/x"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn an_unreachable_endpoint_deletes_nothing() {
    let m = moto();
    boto(&m, "iam.create_user(UserName='keeper')\n");
    let db = common::sqlite();
    sweep(&db, &m);
    let before = db
        .run(&["items", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    // The endpoint goes away: the sweep fails to identify the account or to list, and
    // records that, but marks nothing deleted.
    let port = free_port();
    let r = sweep_offline(&db, &format!("http://127.0.0.1:{port}"));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let s = r.json();
    assert_eq!(s["deleted"], 0);
    assert!(
        s["error_details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--endpoint-url"),
        "{s}"
    );
    assert_eq!(
        db.run(&["items", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        before
    );
}

/// The binary links two rustls crypto providers (ring for notifications, aws-lc-rs in
/// the AWS SDK); without an explicit process default the first handshake panics
/// (ARCHITECTURE.md, invariant 10). Both TLS paths must fail cleanly against a closed loopback port.
#[test]
fn both_tls_stacks_fail_cleanly_instead_of_panicking() {
    let db = common::sqlite();
    let port = free_port();
    let r = sweep_offline(&db, &format!("https://127.0.0.1:{port}"));
    assert_eq!(r.code, 2, "AWS SDK over TLS: {}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, format!("[[notify.routes]]\nname = \"w\"\nchannel = \"webhook\"\nurl = \"https://127.0.0.1:{port}/x\"\nsecret = {{ env = \"S\" }}\n")).unwrap();
    let r = db.run_env(
        &[
            "--config",
            &cfg.display().to_string(),
            "notify",
            "test",
            "w",
        ],
        &[("S", "secret")],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("cannot reach 127.0.0.1") && !r.stderr.contains("panicked"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn aws_config_api_items_are_judged_like_the_files_and_deletions_follow() {
    let m = moto();
    boto(
        &m,
        r#"
c = boto3.client('config')
c.put_configuration_recorder(ConfigurationRecorder={'name':'default','roleARN':'arn:aws:iam::123456789012:role/config','recordingGroup':{'allSupported':True}})
s3.create_bucket(Bucket='config-logs')
c.put_delivery_channel(DeliveryChannel={'name':'default','s3BucketName':'config-logs'})
c.start_configuration_recorder(ConfigurationRecorderName='default')
s3.create_bucket(Bucket='recorded-public')
s3.put_bucket_policy(Bucket='recorded-public', Policy=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::recorded-public/*'}]}))
iam.create_role(RoleName='recorded-open-role', AssumeRolePolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'AWS':'*'},'Action':'sts:AssumeRole'}]}))
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        "[aws]\nconfig_types = [\"AWS::S3::Bucket\", \"AWS::IAM::Role\"]\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let env = aws_env(&m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = common::sqlite();
    let args = [
        "--config", &cfg, "sweep", "--aws", "--only", "config", "--format", "json",
    ];
    let r = db.run_env(&args, &env);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["created"], 3, "{}", r.stdout);
    assert!(open(&db, "s3/bucket_policy_public").contains(&"recorded-public".to_owned()));
    assert!(open(&db, "iam/role_trust_anyone").contains(&"recorded-open-role".to_owned()));
    boto(
        &m,
        "s3.delete_bucket_policy(Bucket='recorded-public')\ns3.delete_bucket(Bucket='recorded-public')\n",
    );
    let s = db.run_env(&args, &env).json();
    assert_eq!(counts(&s), (Some(0), Some(0), Some(1)), "{s}");
}

/// `serve` sweeps each configured AWS source (here one per service of an assumed-role
/// account) on its own interval.
#[test]
fn serve_schedules_aws_sources_per_account_and_service() {
    use std::io::{BufRead, BufReader};
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[aws]
endpoint_url = "{url}"
[accounts."222222222222"]
classification = "ours"
role_arn = "arn:aws:iam::222222222222:role/guardrail-audit"
[[sources]]
name = "prod-iam"
aws = {{ accounts = ["222222222222"], only = ["iam"] }}
interval_seconds = 3600
[[sources]]
name = "prod-ec2"
aws = {{ only = ["ec2"], regions = ["us-east-1"] }}
interval_seconds = 3600
"#,
            url = m.url
        ),
    )
    .unwrap();
    let db = common::sqlite();
    let mut child = serve(&db, &m, &cfg, "0.2");
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut sweeps = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in out.lines().map_while(Result::ok) {
        if line.contains(" sweep ") && line.contains(" seen,") {
            assert!(line.contains("0 errors"), "{line}");
            sweeps += 1;
            if sweeps == 2 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no sweeps");
    }
    let _ = child.kill();
    let _ = child.wait();
    let items = db.run(&["items", "--format", "json"]).json();
    let kinds: std::collections::BTreeSet<(String, String)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["account"].as_str().unwrap().to_owned(),
                i["resource_type"]
                    .as_str()
                    .unwrap()
                    .split("::")
                    .nth(1)
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("222222222222".into(), "EC2".into())),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .all(|(a, t)| a == "222222222222" && (t == "EC2" || t == "IAM")),
        "{kinds:?}"
    );
}

#[test]
fn without_regions_the_sdk_region_chain_decides() {
    let m = moto();
    // A security group in eu-west-2 only.
    boto(
        &m,
        "e = boto3.client('ec2', region_name='eu-west-2')\nv = e.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']\ne.create_security_group(GroupName='chain-sg', Description='d', VpcId=v)\n",
    );
    let db = common::sqlite();
    let mut env = aws_env(&m);
    env.retain(|(k, _)| *k != "AWS_REGION" && *k != "AWS_DEFAULT_REGION");
    env.push(("AWS_REGION", "eu-west-2".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // No --regions and no [aws] regions: AWS_REGION is the region swept.
    let r = db.run_env(
        &["sweep", "--aws", "--only", "ec2", "--format", "json"],
        &env,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let items = db
        .run(&[
            "items",
            "--type",
            "AWS::EC2::SecurityGroup",
            "--format",
            "json",
        ])
        .json();
    let regions: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["region"].as_str())
        .collect();
    assert!(!regions.is_empty(), "{items}");
    assert!(regions.iter().all(|r| *r == "eu-west-2"), "{regions:?}");
    let names: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"chain-sg"), "{names:?}");
}

#[test]
fn a_stalled_endpoint_is_reported_while_waiting_and_gives_up_at_its_deadline() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        "[aws]\nregions = [\"us-east-1\"]\ncall_timeout_seconds = 17\nmax_attempts = 2\n",
    )
    .unwrap();
    let db = common::sqlite();
    let started = Instant::now();
    let mut env: Vec<(&str, &str)> = OFFLINE.to_vec();
    env.push(("AWS_REGION", "us-east-1"));
    let r = db.run_env(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "sweep",
            "--aws",
            "--only",
            "ec2",
            "--endpoint-url",
            &url,
            "--format",
            "json",
        ],
        &env,
    );
    let took = started.elapsed();
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        r.stderr.contains("still waiting after") && r.stderr.contains("entering account"),
        "{}",
        r.stderr
    );
    let s = r.json();
    let errors = s["error_details"].to_string();
    assert!(errors.contains("no answer in time"), "{errors}");
    assert!(
        !errors.contains("DispatchFailure") && !errors.contains("ConnectorError"),
        "{errors}"
    );
}

/// Reachability is a path, not a security group: a public IP, a route to an internet
/// gateway, a network ACL and a group opening the port. Only the instance that has
/// all four gets the finding; a route table edit re-judges the instances behind it;
/// a group's findings are scored by what uses it.
#[test]
fn an_instance_is_reachable_only_through_a_complete_path_and_rejudged_when_it_changes() {
    let m = moto();
    boto(
        &m,
        r#"
vpc = ec2.create_vpc(CidrBlock='10.20.0.0/16')['Vpc']['VpcId']
pub = ec2.create_subnet(VpcId=vpc, CidrBlock='10.20.1.0/24')['Subnet']['SubnetId']
priv = ec2.create_subnet(VpcId=vpc, CidrBlock='10.20.2.0/24')['Subnet']['SubnetId']
igw = ec2.create_internet_gateway()['InternetGateway']['InternetGatewayId']
ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
rt = ec2.create_route_table(VpcId=vpc)['RouteTable']['RouteTableId']
ec2.create_route(RouteTableId=rt, DestinationCidrBlock='0.0.0.0/0', GatewayId=igw)
ec2.associate_route_table(RouteTableId=rt, SubnetId=pub)
def group(name):
    g = ec2.create_security_group(GroupName=name, Description='x', VpcId=vpc)['GroupId']
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[{'IpProtocol':'tcp','FromPort':p,'ToPort':p,'IpRanges':[{'CidrIp':'0.0.0.0/0'}]} for p in (22, 8080)])
    return g
edge = group('edge-open')
inner = group('inner-open')
group('unused-open')
def run(name, subnet, public, sg):
    ec2.run_instances(ImageId='ami-12c6146b', MinCount=1, MaxCount=1,
        NetworkInterfaces=[{'DeviceIndex': 0, 'SubnetId': subnet, 'Groups': [sg], 'AssociatePublicIpAddress': public}],
        TagSpecifications=[{'ResourceType':'instance','Tags':[{'Key':'Name','Value':name}]}])
run('web-public', pub, True, edge)
run('web-private', priv, True, inner)
run('web-no-ip', pub, False, inner)
"#,
    );
    let db = common::sqlite();
    let s = sweep(&db, &m);
    assert_eq!(s["errors"], 0, "{s}");
    let reachable = open(&db, "ec2/instance_reachable_from_internet");
    assert_eq!(reachable, vec!["web-public".to_owned()], "{reachable:?}");
    let finding = |rule: &str, name: &str| -> Value {
        let all = db
            .run(&["findings", "--rule", rule, "--format", "json"])
            .json();
        all.as_array()
            .unwrap()
            .iter()
            .find(|f| f["resource"]["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let f = finding("ec2/instance_reachable_from_internet", "web-public");
    assert_eq!(f["score"], 8, "{f}");
    let detail = f["detail"].as_str().unwrap_or_default();
    for hop in ["igw-", "rtb-", "acl-", "tcp 22", "tcp 8080"] {
        assert!(detail.contains(hop), "{hop} in {detail}");
    }
    // The same rule, three groups: raised where the internet reaches it, lowered where
    // nothing uses it, left alone where it is used but not reachable.
    let edge = finding("ec2/sg_internet_ingress", "edge-open");
    assert_eq!(edge["score"], 7, "{edge}");
    assert!(
        edge["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Score 5 → 7: reachable from the internet on tcp 22, tcp 8080 through igw-"),
        "{edge}"
    );
    assert_eq!(finding("ec2/sg_internet_ingress", "inner-open")["score"], 5);
    let unused = finding("ec2/sg_internet_ingress", "unused-open");
    assert_eq!(unused["score"], 3, "{unused}");
    assert!(unused["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("nothing uses it"));

    // Remove the route to the internet gateway: only the route table changes, and the
    // instance and group behind it are judged again.
    boto(
        &m,
        r#"
rt = [t for t in ec2.describe_route_tables()['RouteTables'] if any(r.get('GatewayId', '').startswith('igw-') for r in t['Routes'])][0]['RouteTableId']
ec2.delete_route(RouteTableId=rt, DestinationCidrBlock='0.0.0.0/0')
"#,
    );
    let s = sweep(&db, &m);
    assert_eq!(counts(&s), (Some(0), Some(1), Some(0)), "{s}");
    assert!(
        open(&db, "ec2/instance_reachable_from_internet").is_empty(),
        "the path is gone"
    );
    assert_eq!(finding("ec2/sg_internet_ingress", "edge-open")["score"], 5);
}

/// A CloudTrail management event as EventBridge delivers it to SQS ("AWS API Call via
/// CloudTrail", the documented shape), by alice through the deploy role.
const EVENT_HELPERS: &str = r#"
sqs = boto3.client('sqs')
acct = boto3.client('sts').get_caller_identity()['Account']
url = sqs.get_queue_url(QueueName='guardrail-events')['QueueUrl']
def cloudtrail(name, request, account=None, source='ec2.amazonaws.com'):
    return json.dumps({'version': '0', 'id': 'ev-' + name, 'detail-type': 'AWS API Call via CloudTrail',
        'source': 'aws.ec2', 'account': account or acct, 'time': '2026-12-02T10:00:00Z', 'region': 'us-east-1', 'resources': [],
        'detail': {'eventVersion': '1.08', 'eventSource': source, 'eventName': name, 'awsRegion': 'us-east-1',
            'sourceIPAddress': '203.0.113.7', 'userAgent': 'aws-cli/2.15.0', 'eventTime': '2026-12-02T09:59:58Z',
            'eventID': 'id-' + name, 'requestParameters': request, 'responseElements': None,
            'userIdentity': {'type': 'AssumedRole', 'arn': 'arn:aws:sts::%s:assumed-role/deploy/alice' % acct, 'accountId': acct,
                'sessionContext': {'sessionIssuer': {'type': 'Role', 'arn': 'arn:aws:iam::%s:role/deploy' % acct, 'userName': 'deploy'}}}}})
def send(body):
    sqs.send_message(QueueUrl=url, MessageBody=body)
def group(name):
    return [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == name][0]['GroupId']
"#;

fn events_once(db: &common::Db, m: &Moto, cfg: &str, extra_env: &[(&str, &str)]) -> common::Run {
    let mut env: Vec<(&str, String)> = aws_env(m);
    env.extend(extra_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = format!("{}/123456789012/guardrail-events", m.url);
    db.run_env(
        &[
            "--config",
            cfg,
            "events",
            "--queue-url",
            &url,
            "--once",
            "--format",
            "json",
        ],
        &env,
    )
}

/// `guardrail serve` on a free loopback port against moto (the config names the
/// endpoint), its stdout piped.
fn serve(db: &common::Db, m: &Moto, cfg: &std::path::Path, poll: &str) -> Child {
    long_running(
        db,
        m,
        cfg,
        &["serve", "--listen", "127.0.0.1:0", "--poll", poll],
    )
}

/// `guardrail <args>` on `db` with `cfg`, against moto, stdout piped.
fn long_running(db: &common::Db, m: &Moto, cfg: &std::path::Path, args: &[&str]) -> Child {
    let mut env = aws_env(m);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args([
            "--database",
            &db.url,
            "--config",
            &cfg.display().to_string(),
        ])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("GUARDRAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start guardrail")
}

/// A local Slack receiver, and the route (TOML) that sends every finding to it.
fn slack_route(dir: &std::path::Path) -> (common::receiver::Receiver, String) {
    let slack = common::receiver::Receiver::start(common::receiver::Mode::Up {
        status: 200,
        content_type: "text/plain",
        body: "ok".into(),
    });
    let hook = dir.join("hook.url");
    std::fs::write(&hook, format!("{}/services/T/B/X", slack.url)).unwrap();
    let route = format!(
        "[[notify.routes]]\nname = \"sec\"\nchannel = \"slack\"\nmin_score = 1\nslack_webhook_url = {{ file = \"{}\" }}\n",
        hook.display()
    );
    (slack, route)
}

/// Each batch's summary line.
fn batches(r: &common::Run) -> Vec<Value> {
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn an_ingress_event_refreshes_one_group_opens_the_finding_and_names_the_actor_in_slack() {
    let m = moto();
    boto(
        &m,
        "sqs = boto3.client('sqs')\nsqs.create_queue(QueueName='guardrail-events', Attributes={'VisibilityTimeout': '1'})\nvpc = ec2.create_vpc(CidrBlock='10.7.0.0/16')['Vpc']['VpcId']\nfor n in ('web', 'old'):\n    ec2.create_security_group(GroupName=n, Description='x', VpcId=vpc)\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (slack, route) = slack_route(dir.path());
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, format!("[aws]\nregions = [\"us-east-1\"]\n\n{route}")).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let db = common::sqlite();
    // The baseline: a full sweep of the account (its first-sweep summary goes to Slack).
    let r = sweep_via(&db, &m, &m.url, &["--only", "ec2"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let sweeps_before = db.run(&["sweeps", "--format", "json"]).json();
    let slack_before = slack.received().len();

    // Someone opens SSH to the world; CloudTrail's event reaches the queue.
    boto(
        &m,
        &format!("{EVENT_HELPERS}\nsg = group('web')\nec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{{'IpProtocol':'tcp','FromPort':22,'ToPort':22,'IpRanges':[{{'CidrIp':'0.0.0.0/0'}}]}}])\nfor _ in range(3):\n    send(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': sg}}))\n"),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let b = batches(&r);
    let refreshed: u64 = b.iter().map(|s| s["refreshed"].as_u64().unwrap()).sum();
    assert_eq!(
        refreshed, 1,
        "three events for one group are one refresh: {}",
        r.stdout
    );
    let history = db.run(&["history", "web", "--format", "json"]).json();
    let latest = &history["revisions"][0];
    assert_eq!(latest["cause"], "event", "{history}");
    assert_eq!(
        latest["actor"]["principal"], "arn:aws:sts::123456789012:assumed-role/deploy/alice",
        "{history}"
    );
    assert_eq!(latest["actor"]["source_ip"], "203.0.113.7");
    assert_eq!(
        latest["actor"]["event_name"],
        "ec2:AuthorizeSecurityGroupIngress"
    );
    assert_eq!(open(&db, "ec2/sg_admin_ports_open"), vec!["web".to_owned()]);
    // Slack got the finding naming who did it, and no sweep ran in between.
    let sent = slack.received();
    let new: Vec<String> = sent[slack_before..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        new.iter().any(|b| b.contains("Changed by")
            && b.contains("assumed-role/deploy/alice")
            && b.contains("203.0.113.7")),
        "{new:?}"
    );
    // The actor is where a triager looks: diff, findings show, changes --actor.
    let d = db.run(&["diff", "web"]);
    assert!(
        d.stdout
            .contains("changed by arn:aws:sts::123456789012:assumed-role/deploy/alice"),
        "{}",
        d.stdout
    );
    let found = db
        .run(&[
            "findings",
            "--rule",
            "ec2/sg_admin_ports_open",
            "--format",
            "json",
        ])
        .json();
    let id = found.as_array().unwrap()[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let shown = db.run(&["findings", "show", &id]);
    assert!(
        shown.stdout.contains("changed by arn:aws:sts::123456789012:assumed-role/deploy/alice (session of arn:aws:iam::123456789012:role/deploy) from 203.0.113.7 (ec2:AuthorizeSecurityGroupIngress)"),
        "{}",
        shown.stdout
    );
    let by_alice = db
        .run(&[
            "changes", "--actor", "alice", "--since", "1d", "--format", "json",
        ])
        .json();
    assert_eq!(by_alice.as_array().unwrap().len(), 1, "{by_alice}");
    assert_eq!(by_alice[0]["item"]["name"], "web");
    let by_role = db
        .run(&["changes", "--actor", "role/deploy", "--format", "json"])
        .json();
    assert_eq!(by_role.as_array().unwrap().len(), 1, "{by_role}");
    let by_nobody = db
        .run(&["changes", "--actor", "mallory", "--format", "json"])
        .json();
    assert_eq!(by_nobody.as_array().unwrap().len(), 0, "{by_nobody}");
    let sweeps_after = db.run(&["sweeps", "--format", "json"]).json();
    let aws_sweeps = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                !s["source"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("events:")
            })
            .count()
    };
    assert_eq!(
        aws_sweeps(&sweeps_before),
        aws_sweeps(&sweeps_after),
        "{sweeps_after}"
    );

    // A delete event for a group that still exists deletes nothing; for one that is
    // gone, exactly that one item is recorded deleted.
    boto(
        &m,
        &format!("{EVENT_HELPERS}\nsend(cloudtrail('DeleteSecurityGroup', {{'groupId': group('web')}}))\nold = group('old')\nec2.delete_security_group(GroupId=old)\nsend(cloudtrail('DeleteSecurityGroup', {{'groupId': old}}))\n"),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let deleted: u64 = batches(&r)
        .iter()
        .map(|s| s["deleted"].as_u64().unwrap())
        .sum();
    assert_eq!(deleted, 1, "{}", r.stdout);
    let items = db.run(&["items", "--format", "json"]).json();
    let active = |name: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == name && i["resource_type"] == "AWS::EC2::SecurityGroup")
    };
    assert!(active("web"), "{items}");
    assert!(!active("old"), "{items}");

    // Malformed, unknown and foreign events: counted with a reason, never fatal.
    boto(
        &m,
        &format!("{EVENT_HELPERS}\nsend('{{not json')\nsend(cloudtrail('DescribeInstances', {{}}))\nsend(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': 'sg-1'}}, account='999999999999'))\n"),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut ignored = std::collections::BTreeMap::new();
    for s in batches(&r) {
        for (k, v) in s["ignored"].as_object().unwrap() {
            *ignored.entry(k.clone()).or_insert(0) += v.as_u64().unwrap();
        }
    }
    assert_eq!(ignored.get("malformed"), Some(&1), "{}", r.stdout);
    assert_eq!(ignored.get("unknown_event"), Some(&1), "{}", r.stdout);
    assert_eq!(ignored.get("unknown_account"), Some(&1), "{}", r.stdout);
    assert!(
        r.stdout.contains("999999999999") && r.stdout.contains("not JSON"),
        "each reason is reported: {}",
        r.stdout
    );

    // Killed between recording and deleting the message: after the restart the event
    // comes again and changes nothing (no new revision, no second notification).
    boto(
        &m,
        &format!("{EVENT_HELPERS}\nsg = group('web')\nec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{{'IpProtocol':'tcp','FromPort':3389,'ToPort':3389,'IpRanges':[{{'CidrIp':'0.0.0.0/0'}}]}}])\nsend(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': sg}}))\n"),
    );
    let r = events_once(
        &db,
        &m,
        &cfg,
        &[("GUARDRAIL_FAULT_EXIT_BEFORE_DELETE", "1")],
    );
    assert_ne!(r.code, 0, "the fault stops it: {}{}", r.stdout, r.stderr);
    let revisions = |db: &common::Db| {
        db.run(&["history", "web", "--format", "json"]).json()["revisions"]
            .as_array()
            .unwrap()
            .len()
    };
    let (revs, notified) = (revisions(&db), slack.received().len());
    std::thread::sleep(Duration::from_secs(2)); // the message becomes visible again
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let refreshed: u64 = batches(&r)
        .iter()
        .map(|s| s["refreshed"].as_u64().unwrap())
        .sum();
    assert_eq!(refreshed, 1, "the event came again: {}", r.stdout);
    assert_eq!(revisions(&db), revs, "no duplicate revision");
    assert_eq!(
        slack.received().len(),
        notified,
        "no duplicate notification"
    );
}

/// The event source's only non-read calls are sqs:ReceiveMessage and
/// sqs:DeleteMessageBatch (allowed by sqs:DeleteMessage), on exactly its own queue;
/// everything else it calls (the refresh) is a read the shipped policy allows.
/// IAM and S3 items and their events, so the event source's reads of each (and the
/// Get call that confirms a deletion) are checked against the shipped policy.
const IAM_S3: &str = r#"
doc = json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'Service':'ec2.amazonaws.com'},'Action':'sts:AssumeRole'}]})
iam.create_role(RoleName='app', AssumeRolePolicyDocument=doc)
iam.create_user(UserName='bob')
s3.create_bucket(Bucket='event-bucket')
send(cloudtrail('TagRole', {'roleName': 'app'}, source='iam.amazonaws.com'))
send(cloudtrail('TagUser', {'userName': 'bob'}, source='iam.amazonaws.com'))
send(cloudtrail('DeleteRole', {'roleName': 'ghost'}, source='iam.amazonaws.com'))
send(cloudtrail('PutBucketPolicy', {'bucketName': 'event-bucket'}, source='s3.amazonaws.com'))
"#;

#[test]
fn the_event_source_only_receives_and_deletes_on_its_own_queue() {
    let m = moto();
    boto(
        &m,
        &format!("sqs = boto3.client('sqs')\nsqs.create_queue(QueueName='guardrail-events')\nsqs.create_queue(QueueName='other')\nvpc = ec2.create_vpc(CidrBlock='10.7.0.0/16')['Vpc']['VpcId']\nec2.create_security_group(GroupName='web', Description='x', VpcId=vpc)\n{EVENT_HELPERS}\nsend(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': group('web')}}))\nsend(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': group('web')}}))\n{IAM_S3}"),
    );
    let p = proxy(&m, 0);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, "[aws]\nregions = [\"us-east-1\"]\n").unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let db = common::sqlite();
    let queue = format!("{}/123456789012/guardrail-events", m.url);
    let mut env = aws_env(&m);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", p.url.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = db.run_env(
        &[
            "--config",
            &cfg,
            "events",
            "--queue-url",
            &queue,
            "--once",
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let refreshed: u64 = batches(&r)
        .iter()
        .map(|s| s["refreshed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        refreshed, 5,
        "group, role, user, bucket, deleted role: {}",
        r.stdout
    );
    let log = std::fs::read_to_string(&p.log).unwrap();
    let ops: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let allowed = shipped_actions();
    let read = |op: &str| {
        ["List", "Get", "Describe"]
            .iter()
            .any(|p| op.starts_with(p))
    };
    let mut writes = std::collections::BTreeSet::new();
    for o in &ops {
        let (service, op) = (
            o["service"].as_str().unwrap(),
            o["operation"].as_str().unwrap(),
        );
        if service == "sts" {
            continue;
        }
        if read(op) {
            let a = action(service, op);
            assert!(
                allowed.contains(&a),
                "{a} is missing from examples/iam-policy.json"
            );
            continue;
        }
        assert_eq!(service, "sqs", "{o}");
        assert!(
            op == "ReceiveMessage" || op == "DeleteMessageBatch",
            "{service}:{op} is not one of the two calls allowed: {o}"
        );
        assert_eq!(o["queue_url"], queue.as_str(), "only on its own queue: {o}");
        writes.insert(op.to_owned());
    }
    assert_eq!(
        writes.into_iter().collect::<Vec<_>>(),
        ["DeleteMessageBatch", "ReceiveMessage"],
        "{log}"
    );
    for a in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
        assert!(
            allowed.contains(&a.to_owned()),
            "{a} missing from examples/iam-policy.json"
        );
    }
}

/// Every action the shipped read-only policy (examples/iam-policy.json) allows.
fn shipped_actions() -> Vec<String> {
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("examples/iam-policy.json")).unwrap(),
    )
    .unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// GET over plain HTTP/1.1 on loopback, with a bearer token; the body.
fn get(addr: &str, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(text)
}

#[test]
fn serve_reads_an_event_source_routes_at_once_and_counts_what_it_ignores() {
    use std::io::{BufRead, BufReader};
    let m = moto();
    boto(
        &m,
        "sqs = boto3.client('sqs')\nsqs.create_queue(QueueName='guardrail-events', Attributes={'VisibilityTimeout': '1'})\nvpc = ec2.create_vpc(CidrBlock='10.8.0.0/16')['Vpc']['VpcId']\nec2.create_security_group(GroupName='web', Description='x', VpcId=vpc)\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (slack, route) = slack_route(dir.path());
    let cfg = dir.path().join("g.toml");
    // A slow AWS source beside it: the event must not wait for its sweep or for a tick.
    std::fs::write(
        &cfg,
        format!(
            r#"[aws]
endpoint_url = "{url}"
regions = ["us-east-1"]
[[sources]]
name = "trail"
events = {{ queue_url = "{url}/123456789012/guardrail-events", wait_seconds = 1 }}
[[sources]]
name = "all-of-it"
aws = {{ regions = ["us-east-1"] }}
interval_seconds = 3600
{route}"#,
            url = m.url,
        ),
    )
    .unwrap();
    let db = common::sqlite();
    let token = db
        .run(&["token", "create", "--name", "t", "--role", "viewer"])
        .stdout
        .trim()
        .to_owned();
    // A scheduler poll far longer than the test: routing must not ride on it.
    let child = serve(&db, &m, &cfg, "3600");
    let mut child = common::Running(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let serving = common::wait_for(
        &lines,
        "guardrail is serving http://",
        Duration::from_secs(90),
    );
    let addr = serving
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    common::wait_for(
        &lines,
        "event source trail: reading",
        Duration::from_secs(60),
    );
    boto(
        &m,
        &format!("{EVENT_HELPERS}\nsg = group('web')\nec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{{'IpProtocol':'tcp','FromPort':22,'ToPort':22,'IpRanges':[{{'CidrIp':'0.0.0.0/0'}}]}}])\nsend(cloudtrail('AuthorizeSecurityGroupIngress', {{'groupId': sg}}))\nsend('{{not json')\nsend(cloudtrail('DescribeNothing', {{}}))\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let named = loop {
        let named = slack.received().iter().any(|r| {
            let b = String::from_utf8_lossy(&r.body);
            b.contains("Changed by") && b.contains("assumed-role/deploy/alice")
        });
        if named || Instant::now() > deadline {
            break named;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        named,
        "no Slack message naming the actor: {:?}",
        slack.received().len()
    );
    // Every message is counted, whatever became of it, and the ignored ones by reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let body = get(&addr, "/metrics", &token);
        let counted = body.contains("guardrail_event_messages_total 3");
        if counted || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for line in [
        "guardrail_event_messages_total 3",
        "guardrail_event_refreshes_total 1",
        "guardrail_events_ignored_total{reason=\"malformed\"} 1",
        "guardrail_events_ignored_total{reason=\"unknown_event\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    // The finding's API record names who opened it.
    let found = db
        .run(&[
            "findings",
            "--rule",
            "ec2/sg_admin_ports_open",
            "--format",
            "json",
        ])
        .json();
    let id = found.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let detail: Value =
        serde_json::from_str(&get(&addr, &format!("/api/v1/findings/{id}"), &token)).unwrap();
    assert_eq!(
        detail["changed_by"]["principal"], "arn:aws:sts::123456789012:assumed-role/deploy/alice",
        "{detail}"
    );
    let _ = child.0.kill();
    let _ = child.0.wait();
    assert_eq!(open(&db, "ec2/sg_admin_ports_open"), vec!["web".to_owned()]);
}

#[test]
fn iam_and_s3_events_refresh_the_named_role_and_bucket_and_a_deleted_role_by_its_name() {
    let m = moto();
    boto(
        &m,
        "sqs = boto3.client('sqs')\nsqs.create_queue(QueueName='guardrail-events', Attributes={'VisibilityTimeout': '1'})\ndoc = json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'Service':'ec2.amazonaws.com'},'Action':'sts:AssumeRole'}]})\niam.create_role(RoleName='app', AssumeRolePolicyDocument=doc)\niam.create_role(RoleName='old-app', AssumeRolePolicyDocument=doc)\ns3.create_bucket(Bucket='data-bucket')\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, "[aws]\nregions = [\"us-east-1\"]\n").unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let db = common::sqlite();
    let r = sweep_via(&db, &m, &m.url, &["--only", "iam,s3"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let sum = |r: &common::Run, field: &str| -> u64 {
        batches(r)
            .iter()
            .map(|s| s[field].as_u64().unwrap_or(0))
            .sum()
    };
    let iam_event = |name: &str, request: &str| {
        format!("send(cloudtrail('{name}', {request}, source='iam.amazonaws.com'))")
    };
    let s3_event = |name: &str| {
        format!("send(cloudtrail('{name}', {{'bucketName': 'data-bucket'}}, source='s3.amazonaws.com'))")
    };

    // Events for unchanged items re-read them in the sweep's own shape: nothing new.
    boto(
        &m,
        &format!(
            "{EVENT_HELPERS}\n{}\n{}\n",
            iam_event("TagRole", "{'roleName': 'app'}"),
            s3_event("PutBucketTagging")
        ),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(sum(&r, "refreshed"), 2, "{}", r.stdout);
    assert_eq!(
        (sum(&r, "created"), sum(&r, "modified")),
        (0, 0),
        "a refresh of an unchanged item must equal the sweep's item: {}",
        r.stdout
    );

    // The trust policy opened to anyone and the bucket made public: both judged now.
    boto(
        &m,
        &format!(
            "{EVENT_HELPERS}\niam.update_assume_role_policy(RoleName='app', PolicyDocument=json.dumps({{'Version':'2012-10-17','Statement':[{{'Effect':'Allow','Principal':{{'AWS':'*'}},'Action':'sts:AssumeRole'}}]}}))\n{}\ns3.put_bucket_policy(Bucket='data-bucket', Policy=json.dumps({{'Version':'2012-10-17','Statement':[{{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::data-bucket/*'}}]}}))\n{}\n",
            iam_event("UpdateAssumeRolePolicy", "{'roleName': 'app'}"),
            s3_event("PutBucketPolicy")
        ),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(sum(&r, "modified"), 2, "{}", r.stdout);
    assert!(open(&db, "iam/role_trust_anyone").contains(&"app".to_owned()));
    assert!(open(&db, "s3/bucket_policy_public").contains(&"data-bucket".to_owned()));
    let history = db.run(&["history", "app", "--format", "json"]).json();
    assert_eq!(
        history["revisions"][0]["actor"]["event_name"], "iam:UpdateAssumeRolePolicy",
        "{history}"
    );

    // A role deleted: the event names it by name, the item is keyed by its role id;
    // exactly that role is recorded deleted, the other stays.
    boto(
        &m,
        &format!(
            "{EVENT_HELPERS}\niam.delete_role(RoleName='old-app')\n{}\n{}\n",
            iam_event("DeleteRole", "{'roleName': 'old-app'}"),
            iam_event("DeleteRole", "{'roleName': 'app'}")
        ),
    );
    let r = events_once(&db, &m, &cfg, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(sum(&r, "deleted"), 1, "{}", r.stdout);
    let items = db.run(&["items", "--format", "json"]).json();
    let active = |name: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == name && i["resource_type"] == "AWS::IAM::Role")
    };
    assert!(!active("old-app"), "{items}");
    assert!(active("app"), "{items}");
}

#[test]
fn a_change_found_by_a_sweep_names_its_actor_from_cloudtrail() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("cloudtrail.jsonl");
    std::fs::write(&trail, "").unwrap();
    // moto has no LookupEvents: its launcher answers from the records written here.
    let m = moto_with(&[("GUARDRAIL_TEST_CLOUDTRAIL", trail.to_str().unwrap())]);
    boto(
        &m,
        "vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']\nec2.create_security_group(GroupName='web', Description='x', VpcId=vpc)\n",
    );
    let db = common::sqlite();
    let first = sweep_via(&db, &m, &m.url, &["--only", "ec2"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // The first sweep finds what already existed: nobody is looked up.
    let v: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(v["actors"]["asked"], 0, "{v}");
    std::thread::sleep(Duration::from_millis(1100));
    // alice opens SSH; CloudTrail records it (and, later, a read by someone else).
    let at = |offset: i64| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + offset;
        t.to_string()
    };
    boto(
        &m,
        &format!(
            r#"
import datetime
sg = [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == 'web'][0]['GroupId']
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{{'IpProtocol':'tcp','FromPort':22,'ToPort':22,'IpRanges':[{{'CidrIp':'0.0.0.0/0'}}]}}])
acct = boto3.client('sts').get_caller_identity()['Account']
def record(name, who, read_only, at):
    return json.dumps({{'eventVersion': '1.08', 'eventSource': 'ec2.amazonaws.com', 'eventName': name, 'awsRegion': 'us-east-1',
        'eventTime': datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'eventID': 'ct-' + name, 'readOnly': read_only, 'sourceIPAddress': '198.51.100.4', 'userAgent': 'console.amazonaws.com',
        'requestParameters': {{'groupId': sg}},
        'userIdentity': {{'type': 'AssumedRole', 'arn': 'arn:aws:sts::%s:assumed-role/admin/%s' % (acct, who), 'accountId': acct,
            'sessionContext': {{'sessionIssuer': {{'type': 'Role', 'arn': 'arn:aws:iam::%s:role/admin' % acct}}}}}}}})
with open({trail:?}, 'w') as f:
    f.write(record('AuthorizeSecurityGroupIngress', 'alice', False, {at0}) + '\n')
    f.write(record('DescribeSecurityGroups', 'bob', True, {at0}) + '\n')
"#,
            trail = trail.to_str().unwrap(),
            at0 = at(-1)
        ),
    );
    std::thread::sleep(Duration::from_millis(1100));
    let second = sweep_via(&db, &m, &m.url, &["--only", "ec2"]);
    assert!(
        second.code == 0 || second.code == 2,
        "{}{}",
        second.stdout,
        second.stderr
    );
    let v: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(v["modified"], 1, "{v}");
    assert_eq!(v["actors"]["found"], 1, "{v}");
    let history = db.run(&["history", "web", "--format", "json"]).json();
    let latest = &history["revisions"][0];
    assert_eq!(latest["cause"], "sweep");
    assert_eq!(
        latest["actor"]["principal"], "arn:aws:sts::123456789012:assumed-role/admin/alice",
        "the mutating call, not the newer read: {history}"
    );
    assert_eq!(
        latest["actor"]["event_id"],
        "ct-AuthorizeSecurityGroupIngress"
    );
    let shown = db
        .run(&["changes", "--actor", "alice", "--format", "json"])
        .json();
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
}

#[test]
fn organisation_accounts_are_discovered_at_each_sweep_closed_and_excluded_ones_skipped() {
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let out = |f: &str| dir.path().join(f).display().to_string();
    // An organisation: the management account (moto's own), two members, a sandbox OU
    // with a third member.
    boto(
        &m,
        &r#"
org = boto3.client('organizations')
org.create_organization(FeatureSet='ALL')
root = org.list_roots()['Roots'][0]['Id']
sandbox = org.create_organizational_unit(ParentId=root, Name='sandbox')['OrganizationalUnit']['Id']
ids = {}
for name in ('prod', 'staging', 'play'):
    ids[name] = org.create_account(Email=f'{name}@example.com', AccountName=name)['CreateAccountStatus']['AccountId']
org.move_account(AccountId=ids['play'], SourceParentId=root, DestinationParentId=sandbox)
open(ORG, 'w').write(json.dumps({'sandbox': sandbox, **ids}))
"#
        .replace("ORG", &format!("{:?}", out("org.json"))),
    );
    let org: Value =
        serde_json::from_str(&std::fs::read_to_string(out("org.json")).unwrap()).unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!(
            "[aws]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\norganization = {{ role_name = \"guardrail-audit\", exclude_ous = [\"{}\"] }}\n",
            m.url,
            org["sandbox"].as_str().unwrap()
        ),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let mut env = aws_env(&m);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = common::sqlite();
    // The accounts with items, and how many listings the sweep ran (one set per
    // account entered).
    let swept_accounts = |db: &common::Db| -> (std::collections::BTreeSet<String>, u64) {
        let r = db.run_env(
            &[
                "--config", &cfg, "sweep", "--only", "iam", "--format", "json",
            ],
            &env,
        );
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let s: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(s["errors"], 0, "{s}");
        let accounts = db
            .run(&["items", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["account"].as_str().unwrap().to_owned())
            .collect();
        (accounts, s["listings"].as_u64().unwrap())
    };
    let id = |n: &str| org[n].as_str().unwrap().to_owned();
    let (first, listings) = swept_accounts(&db);
    for member in ["prod", "staging"] {
        assert!(first.contains(&id(member)), "{member} not swept: {first:?}");
    }
    assert!(
        first.contains("123456789012"),
        "the management account: {first:?}"
    );
    assert!(
        !first.contains(&id("play")),
        "the excluded OU was swept: {first:?}"
    );
    // `accounts check` enters the accounts a sweep would: the organisation's, listed now.
    let r = db.run_env(
        &["--config", &cfg, "accounts", "check", "--only", "iam"],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("organisation: 3 account(s) to sweep"),
        "{}",
        r.stdout
    );
    for member in ["prod", "staging"] {
        assert!(
            r.stdout.contains(&format!(
                "{} via arn:aws:iam::{}:role/guardrail-audit: ok",
                id(member),
                id(member)
            )),
            "{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains(&id("play")), "{}", r.stdout);

    // Staging closes: the next sweep enters one account fewer (no restart), and its
    // items are not deleted by a sweep that never entered it.
    boto(
        &m,
        &format!(
            "boto3.client('organizations').close_account(AccountId='{}')\n",
            id("staging")
        ),
    );
    let (_, after_close) = swept_accounts(&db);
    assert_eq!(
        after_close * 3,
        listings * 2,
        "two accounts of three entered"
    );
    let sweeps = db.run(&["sweeps", "--format", "json"]).json();
    assert_eq!(sweeps[0]["deleted"], 0, "{sweeps}");
    // A new account joins: the next sweep enters it.
    boto(
        &m,
        &format!("org = boto3.client('organizations')\nnew = org.create_account(Email='new@example.com', AccountName='new')['CreateAccountStatus']['AccountId']\nopen({:?}, 'w').write(new)\n", out("new.txt")),
    );
    let new = std::fs::read_to_string(out("new.txt")).unwrap();
    let (third, joined) = swept_accounts(&db);
    assert!(third.contains(&new), "the new account: {third:?}");
    assert_eq!(joined, listings, "three accounts entered again");
}

/// The faultproxy in front of moto adding `ms` to every call, as a real AWS round trip
/// would: sweeps become latency-bound, and a worker is reliably caught mid-job.
fn latency_proxy(m: &Moto, ms: u32) -> Proxy {
    proxy_with(m, &["--latency-ms", &ms.to_string()])
}

/// An organisation of `members` accounts (plus moto's own, the management account),
/// each holding one security group open to the world on SSH. Returns the member ids.
fn organisation_with_open_ssh(m: &Moto, members: usize, out: &std::path::Path) -> Vec<String> {
    boto(
        m,
        &format!(
            r#"
org = boto3.client('organizations')
org.create_organization(FeatureSet='ALL')
ids = [org.create_account(Email=f'm{{i}}@example.com', AccountName=f'm{{i}}')['CreateAccountStatus']['AccountId'] for i in range({members})]
sts = boto3.client('sts')
for account in ids + ['123456789012']:
    c = sts.assume_role(RoleArn=f'arn:aws:iam::{{account}}:role/guardrail-audit', RoleSessionName='seed')['Credentials']
    e = boto3.client('ec2', aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])
    vpc = e.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']
    g = e.create_security_group(GroupName=f'open-ssh-{{account}}', Description='bastion', VpcId=vpc)['GroupId']
    e.authorize_security_group_ingress(GroupId=g, IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{{'CidrIp': '0.0.0.0/0'}}]}}])
open({out:?}, 'w').write(json.dumps(ids))
"#,
            out = out.display().to_string()
        ),
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// Waits until `expected` jobs exist and every one has run once and is free.
fn wait_for_jobs(db: &common::Db, expected: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = db.run(&["sweeps", "--jobs", "--format", "json"]);
        // Before the first worker migrated a fresh database the command may fail.
        if r.code == 0 {
            let j = r.json();
            let rows = j.as_array().unwrap();
            if rows.len() == expected
                && rows
                    .iter()
                    .all(|r| r["runs"] == 1 && r["leased_by"].is_null())
            {
                return;
            }
            assert!(Instant::now() < deadline, "jobs did not all finish: {j}");
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not all finish: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn worker(db: &common::Db, m: &Moto, cfg: &std::path::Path) -> Child {
    long_running(db, m, cfg, &["worker", "--poll", "0.2"])
}

#[test]
fn three_workers_share_an_organisation_and_one_killed_mid_job_loses_nothing_and_repeats_nothing() {
    let Some(db) = common::postgres() else {
        return;
    };
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let members = organisation_with_open_ssh(&m, 6, &dir.path().join("ids.json"));
    let p = latency_proxy(&m, 250);
    let (slack, route) = slack_route(dir.path());
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!(
            "[aws]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\norganization = {{ role_name = \"guardrail-audit\" }}\n\n[[sources]]\nname = \"org\"\naws = {{ only = [\"ec2\"] }}\ninterval_seconds = 3600\n\n{route}",
            p.url
        ),
    )
    .unwrap();
    let jobs = || db.run(&["sweeps", "--jobs", "--format", "json"]).json();
    let mut workers: Vec<Child> = (0..3).map(|_| worker(&db, &m, &cfg)).collect();
    // Kill, without warning, whichever worker first holds an account's job.
    let deadline = Instant::now() + Duration::from_secs(120);
    let victim = loop {
        let held = jobs().as_array().unwrap().iter().find_map(|j| {
            let by = j["leased_by"].as_str()?;
            (j["account"] != "").then(|| (j["job"].as_str().unwrap().to_owned(), by.to_owned()))
        });
        if let Some((job, by)) = held {
            let pid: u32 = by.rsplit(':').next().unwrap().parse().unwrap();
            let w = workers.iter_mut().position(|w| w.id() == pid).unwrap();
            let mut dead = workers.remove(w);
            dead.kill().unwrap();
            dead.wait().unwrap();
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "no worker took an account job: {}",
            jobs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The two left finish everything, the victim's job included.
    let expected = members.len() + 2; // members, the management account, discovery
    wait_for_jobs(&db, expected, Duration::from_secs(240));
    // Notifications are delivered between jobs; wait for one per account at most.
    let accounts: Vec<String> = members
        .iter()
        .cloned()
        .chain(["123456789012".to_owned()])
        .collect();
    let mentioned = |account: &str| {
        slack
            .received()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&format!("open-ssh-{account}")))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !accounts.iter().all(|a| mentioned(a) >= 1) {
        assert!(
            Instant::now() < deadline,
            "not every account's finding reached Slack"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let outputs: Vec<String> = workers
        .into_iter()
        .map(|mut w| {
            let _ = w.kill();
            let out = w.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();

    let j = jobs();
    let rows = j.as_array().unwrap();
    for r in rows {
        assert_eq!(r["runs"], 1, "every job exactly once: {r}");
        assert_eq!(r["last_status"], "complete", "{r}");
        let takeovers = if r["job"] == victim.as_str() { 1 } else { 0 };
        assert_eq!(r["takeovers"], takeovers, "{r}");
    }
    assert!(
        outputs
            .iter()
            .any(|o| o.contains(&format!("job {victim} taken over from"))),
        "the takeover is reported: {outputs:?}"
    );
    assert!(
        outputs.iter().all(|o| o.contains("sweep ")),
        "both survivors swept: {outputs:?}"
    );
    // Every account swept, every item stored once: one revision each, none modified by
    // the second sweep of the victim's account.
    let items = db
        .run(&["items", "--format", "json", "--limit", "10000"])
        .json();
    let items = items.as_array().unwrap();
    for a in &accounts {
        assert!(
            items.iter().any(|i| i["account"] == a.as_str()),
            "{a} not swept"
        );
    }
    let revisions = db.revisions();
    assert_eq!(revisions, items.len() as i64, "one revision per item");
    // One finding per account, and one Slack mention of each.
    let ssh = open(&db, "ec2/sg_admin_ports_open");
    assert_eq!(ssh.len(), accounts.len(), "{ssh:?}");
    for a in &accounts {
        assert_eq!(mentioned(a), 1, "account {a}: notified once");
    }
    // The victim's sweep is marked interrupted, not left running.
    let sweeps = db
        .run(&["sweeps", "--format", "json", "--limit", "100"])
        .json();
    let statuses: Vec<&str> = sweeps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.contains(&"running"), "{sweeps}");
    // And each account was swept to the end once: no job ran on two workers at once.
    let complete: Vec<&str> = sweeps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "complete")
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = complete.iter().collect();
    assert_eq!(complete.len(), accounts.len(), "{sweeps}");
    assert_eq!(distinct.len(), accounts.len(), "{sweeps}");
    assert!(
        outputs
            .iter()
            .all(|o| !o.contains("took it over while it ran")),
        "{outputs:?}"
    );
    drop(p);
}

#[test]
fn one_worker_sweeps_several_accounts_side_by_side_each_once() {
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let members = organisation_with_open_ssh(&m, 3, &dir.path().join("ids.json"));
    let p = latency_proxy(&m, 250);
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!(
            "[aws]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\norganization = {{ role_name = \"guardrail-audit\" }}\n\n[workers]\njobs_at_once = 4\n\n[[sources]]\nname = \"org\"\naws = {{ only = [\"ec2\"] }}\ninterval_seconds = 3600\n",
            p.url
        ),
    )
    .unwrap();
    let db = common::sqlite();
    let mut w = worker(&db, &m, &cfg);
    let expected = members.len() + 2;
    wait_for_jobs(&db, expected, Duration::from_secs(180));
    let _ = w.kill();
    let _ = w.wait();
    let sweeps = db.run(&["sweeps", "--format", "json"]).json();
    let sweeps = sweeps.as_array().unwrap();
    assert_eq!(
        sweeps.len(),
        members.len() + 1,
        "one sweep per account: {sweeps:?}"
    );
    assert!(
        sweeps.iter().all(|s| s["status"] == "complete"),
        "{sweeps:?}"
    );
    // Side by side: some account's sweep started before another's had finished.
    let span = |s: &Value| {
        (
            s["started_at"].as_str().unwrap().to_owned(),
            s["finished_at"].as_str().unwrap().to_owned(),
        )
    };
    let overlapping = sweeps.iter().any(|a| {
        sweeps
            .iter()
            .any(|b| a["id"] != b["id"] && span(a).0 <= span(b).0 && span(b).0 < span(a).1)
    });
    assert!(overlapping, "sweeps ran one after another: {sweeps:?}");
    assert_eq!(
        open(&db, "ec2/sg_admin_ports_open").len(),
        members.len() + 1
    );
}
