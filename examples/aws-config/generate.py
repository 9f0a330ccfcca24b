#!/usr/bin/env python3
"""Writes the bundled example data: two consecutive AWS Config snapshot deliveries
(day1/, day2/) for two accounts in two regions, in the layout and item shape AWS
delivers to S3 (AWSLogs/<acct>/Config/<region>/<y>/<m>/<d>/ConfigSnapshot/...).

The files are committed; this script documents how they were made and regenerates
them byte for byte (fixed times and name-based UUIDs). Planted misconfigurations and
the day-2 changes are listed in examples/aws-config/README.md.

    python3 examples/aws-config/generate.py
"""
import copy
import json
import os
import shutil
import uuid
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
PROD, DEV = "111111111111", "222222222222"
THIRD_PARTY = "999999999999"
REGIONS = ["us-east-1", "eu-west-1"]
DAY1, DAY2 = "2026-11-20T06:00:00.000Z", "2026-11-21T06:00:00.000Z"
DAY1_FILE, DAY2_FILE = "20261120T060000Z", "20261121T060000Z"
CREATED = "2026-03-02T09:15:00.000Z"


def encode(policy):
    """IAM returns policy documents URL-encoded; AWS Config keeps them that way."""
    return quote(json.dumps(policy, separators=(",", ":")), safe="")


def stmt(effect, action, resource="*", **extra):
    s = {"Effect": effect, "Action": action, "Resource": resource}
    s.update(extra)
    return s


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def state_id(key):
    return str(1700000000000 + int(uuid.uuid5(uuid.NAMESPACE_URL, key).int % 10**9))


def item(account, region, rtype, rid, name, arn, configuration, captured,
         supplementary=None, tags=None, relationships=None, az="Not Applicable"):
    return {
        "version": "1.3",
        "accountId": account,
        "configurationItemCaptureTime": captured,
        "configurationItemStatus": "OK",
        "configurationStateId": state_id(f"{rtype}/{rid}/{captured}"),
        "configurationItemMD5Hash": "",
        "arn": arn,
        "resourceType": rtype,
        "resourceId": rid,
        "resourceName": name,
        "awsRegion": region,
        "availabilityZone": az,
        "resourceCreationTime": CREATED,
        "tags": tags or {},
        "relatedEvents": [],
        "relationships": relationships or [],
        "configuration": configuration,
        "supplementaryConfiguration": supplementary or {},
    }


# ---------------------------------------------------------------- IAM (global)

def iam_user(account, name, uid, captured, inline=None, groups=(), attached=(), tags=None):
    arn = f"arn:aws:iam::{account}:user/{name}"
    conf = {
        "path": "/", "userName": name, "userId": uid, "arn": arn,
        "createDate": CREATED,
        "userPolicyList": [{"policyName": n, "policyDocument": encode(p)} for n, p in (inline or {}).items()],
        "groupList": list(groups),
        "attachedManagedPolicies": [{"policyName": p.split("/")[-1], "policyArn": p} for p in attached],
        "permissionsBoundary": None,
        "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
    }
    return item(account, "global", "AWS::IAM::User", uid, name, arn, conf, captured, tags=tags)


def iam_group(account, name, gid, captured, inline=None, attached=()):
    arn = f"arn:aws:iam::{account}:group/{name}"
    conf = {
        "path": "/", "groupName": name, "groupId": gid, "arn": arn, "createDate": CREATED,
        "groupPolicyList": [{"policyName": n, "policyDocument": encode(p)} for n, p in (inline or {}).items()],
        "attachedManagedPolicies": [{"policyName": p.split("/")[-1], "policyArn": p} for p in attached],
    }
    return item(account, "global", "AWS::IAM::Group", gid, name, arn, conf, captured)


def iam_role(account, name, rid, captured, trust, inline=None, attached=(), last_used=None, tags=None):
    arn = f"arn:aws:iam::{account}:role/{name}"
    conf = {
        "path": "/", "roleName": name, "roleId": rid, "arn": arn, "createDate": CREATED,
        "assumeRolePolicyDocument": encode(trust),
        "instanceProfileList": [],
        "rolePolicyList": [{"policyName": n, "policyDocument": encode(p)} for n, p in (inline or {}).items()],
        "attachedManagedPolicies": [{"policyName": p.split("/")[-1], "policyArn": p} for p in attached],
        "permissionsBoundary": None,
        "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        "roleLastUsed": last_used,
        "description": None,
        "maxSessionDuration": 3600,
    }
    return item(account, "global", "AWS::IAM::Role", rid, name, arn, conf, captured, tags=tags)


def iam_policy(account, name, pid, captured, document, attachments):
    arn = f"arn:aws:iam::{account}:policy/{name}"
    conf = {
        "policyName": name, "policyId": pid, "arn": arn, "path": "/",
        "defaultVersionId": "v1", "attachmentCount": attachments,
        "permissionsBoundaryUsageCount": 0, "isAttachable": True, "description": None,
        "createDate": CREATED, "updateDate": CREATED,
        "policyVersionList": [{"document": encode(document), "versionId": "v1",
                               "isDefaultVersion": True, "createDate": CREATED}],
    }
    return item(account, "global", "AWS::IAM::Policy", pid, name, arn, conf, captured)


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def ec2_trust():
    return doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


def iam_items(account, day):
    c = DAY1 if day == 1 else DAY2
    p = "P" if account == PROD else "D"
    out = [
        iam_user(account, "alice", f"AIDA{p}ALICE000000001", DAY1, groups=["Admins"],
                 tags={"owner": "platform"}),
        iam_user(account, "ci-deployer", f"AIDA{p}CIDEPLOY00001", DAY1, attached=[ADMIN],
                 tags={"owner": "delivery"}),
        iam_group(account, "Admins", f"AGPA{p}ADMINS0000001", DAY1, attached=[ADMIN]),
        iam_group(account, "Developers", f"AGPA{p}DEVS000000001", DAY1,
                  inline={"s3-everything": doc(stmt("Allow", "s3:*"))}),
        iam_role(account, "app-role", f"AROA{p}APPROLE000001", DAY1, ec2_trust(),
                 inline={"read-config": doc(stmt("Allow", ["s3:GetObject", "s3:ListBucket"],
                                                 [f"arn:aws:s3:::{account}-app-config", f"arn:aws:s3:::{account}-app-config/*"]))},
                 # Only the last-used date moves between days: no revision, no alert.
                 last_used={"lastUsedDate": c, "region": "us-east-1"},
                 tags={"owner": "payments"}),
        iam_policy(account, "ReadBuckets", f"ANPA{p}READBKT000001", DAY1,
                   doc(stmt("Allow", ["s3:GetObject", "s3:ListBucket"], "arn:aws:s3:::*")), 1),
        # Misconfigured: a customer managed policy granting everything.
        iam_policy(account, "FullAdmin", f"ANPA{p}FULLADM000001", DAY1, doc(stmt("Allow", "*")),
                   2 if day == 1 else 3),
    ]
    if account == PROD:
        # Misconfigured: inline policy with iam:* ; deleted on day 2.
        if day == 1:
            out.append(iam_user(account, "bob", "AIDAPBOB0000000001", DAY1,
                                inline={"iam-admin": doc(stmt("Allow", "iam:*"))}, tags={"owner": "identity"}))
        # Third-party role without an external id on day 1; fixed on day 2.
        trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{THIRD_PARTY}:root"}, "Action": "sts:AssumeRole"}
        if day == 2:
            trust["Condition"] = {"StringEquals": {"sts:ExternalId": "guardrail-7f3a"}}
        out.append(iam_role(account, "vendor-audit", "AROAPVENDOR0000001", DAY1 if day == 1 else DAY2,
                            doc(trust), attached=[READONLY], tags={"owner": "security"}))
    else:
        # Misconfigured: a role anyone can assume.
        out.append(iam_role(account, "break-glass", "AROADBREAKGLASS001", DAY1,
                            doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
                            attached=[ADMIN], tags={"owner": "security"}))
        if day == 2:
            # Created on day 2 with an inline admin policy.
            out.append(iam_user(account, "dave", "AIDADDAVE000000001", DAY2,
                                inline={"admin": doc(stmt("Allow", "*"))}, tags={"owner": "data"}))
    return out


# ---------------------------------------------------------------- S3

def bucket(account, region, name, captured, *, policy=None, acl_grants=None, pab=None,
           sse=True, versioning="Enabled", logging_to=None, tags=None):
    arn = f"arn:aws:s3:::{name}"
    owner = {"displayName": f"owner-{account}", "id": f"c0ffee{account}"}
    grants = [{"grantee": {"id": owner["id"], "displayName": owner["displayName"]}, "permission": "FullControl"}]
    grants += acl_grants or []
    supp = {
        "AccessControlList": json.dumps({"grantSet": None, "grantList": grants, "owner": owner, "isRequesterCharged": False}),
        "BucketLoggingConfiguration": {"destinationBucketName": logging_to, "logFilePrefix": f"{name}/" if logging_to else None},
        "BucketVersioningConfiguration": {"status": versioning, "isMfaDeleteEnabled": None},
        "IsRequesterPaysEnabled": False,
        "BucketAccelerateConfiguration": {"status": None},
        "BucketNotificationConfiguration": {"configurations": {}},
    }
    if policy is not None:
        supp["BucketPolicy"] = {"policyText": json.dumps(policy)}
    else:
        supp["BucketPolicy"] = {"policyText": None}
    if pab is not None:
        supp["PublicAccessBlockConfiguration"] = {"blockPublicAcls": pab, "ignorePublicAcls": pab,
                                                  "blockPublicPolicy": pab, "restrictPublicBuckets": pab}
    if sse:
        supp["ServerSideEncryptionConfiguration"] = {"rules": [{"applyServerSideEncryptionByDefault": {
            "sseAlgorithm": "aws:kms" if sse == "kms" else "AES256", "kmsMasterKeyID": None}, "bucketKeyEnabled": sse == "kms"}]}
    conf = {"name": name, "owner": owner, "creationDate": CREATED}
    return item(account, region, "AWS::S3::Bucket", name, name, arn, conf, captured, supp, tags=tags)


def public_read(name, **cond):
    s = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}
    if cond:
        s["Condition"] = cond
    return doc(s)


ALL_USERS_READ = {"grantee": "AllUsers", "permission": "Read"}


def s3_items(account, region, day):
    a = "prod" if account == PROD else "dev"
    out = []
    if region == "us-east-1":
        logs = f"{a}-{account}-access-logs"
        out.append(bucket(account, region, logs, DAY1, pab=True, sse="kms", tags={"owner": "security"}))
        # Misconfigured: public website assets through a bucket policy, no public access block.
        out.append(bucket(account, region, f"{a}-{account}-public-assets", DAY1,
                          policy=public_read(f"{a}-{account}-public-assets"), pab=False, logging_to=logs,
                          tags={"owner": "web"}))
        # Not public: Principal * restricted to one VPC endpoint.
        out.append(bucket(account, region, f"{a}-{account}-internal-artifacts", DAY1,
                          policy=public_read(f"{a}-{account}-internal-artifacts",
                                             StringEquals={"aws:SourceVpce": "vpce-0a1b2c3d4e5f60718"}),
                          pab=True, logging_to=logs, tags={"owner": "delivery"}))
        if account == PROD:
            # Misconfigured on day 1 (no encryption, no versioning, no logging); fixed on day 2.
            fixed = day == 2
            out.append(bucket(account, region, f"prod-{account}-customer-data", DAY1 if not fixed else DAY2,
                              pab=True, sse="kms" if fixed else None, versioning="Enabled" if fixed else "Off",
                              logging_to=logs if fixed else None, tags={"owner": "payments", "data": "confidential"}))
        else:
            # Misconfigured: AllUsers may read through the ACL.
            out.append(bucket(account, region, f"dev-{account}-shared", DAY1, acl_grants=[ALL_USERS_READ],
                              pab=False, versioning="Off", tags={"owner": "data"}))
    else:
        if account == PROD:
            out.append(bucket(account, region, f"prod-{account}-eu-backups", DAY1, pab=True, sse="kms",
                              tags={"owner": "platform"}))
        else:
            # Made public on day 2 by a policy change.
            name = f"dev-{account}-eu-scratch"
            pol = public_read(name) if day == 2 else None
            out.append(bucket(account, region, name, DAY1 if day == 1 else DAY2, policy=pol, pab=False if day == 2 else True,
                              tags={"owner": "data"}))
    return out


# ---------------------------------------------------------------- EC2

def perm(proto, from_port, to_port, cidrs=(), cidrs6=(), groups=()):
    return {
        "fromPort": from_port, "ipProtocol": proto, "toPort": to_port,
        "ipv6Ranges": [{"cidrIpv6": c} for c in cidrs6],
        "prefixListIds": [],
        "userIdGroupPairs": [{"groupId": g, "userId": None} for g in groups],
        "ipv4Ranges": [{"cidrIp": c} for c in cidrs],
        "ipRanges": list(cidrs),
    }


ALL_EGRESS = perm("-1", None, None, ["0.0.0.0/0"])


def sg(account, region, gid, name, vpc, captured, ingress, egress=(ALL_EGRESS,), tags=None, instances=()):
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{gid}"
    conf = {"description": f"{name} security group", "groupName": name, "ipPermissions": list(ingress),
            "ownerId": account, "groupId": gid, "ipPermissionsEgress": list(egress),
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()], "vpcId": vpc}
    rel = [{"resourceType": "AWS::EC2::VPC", "resourceId": vpc, "resourceName": None, "relationshipName": "Is contained in Vpc"}]
    rel += [{"resourceType": "AWS::EC2::Instance", "resourceId": i, "resourceName": None, "relationshipName": "Is associated with Instance"} for i in instances]
    return item(account, region, "AWS::EC2::SecurityGroup", gid, name, arn, conf, captured, tags=tags, relationships=rel)


def instance(account, region, iid, name, vpc, subnet, groups, captured, state, public_ip=None, profile=None, imds_v2=True, launch=CREATED):
    arn = f"arn:aws:ec2:{region}:{account}:instance/{iid}"
    conf = {
        "instanceId": iid, "imageId": "ami-0c1d2e3f4a5b6c7d8", "instanceType": "t3.medium",
        "launchTime": launch, "state": {"code": 16 if state == "running" else 80, "name": state},
        "stateTransitionReason": "" if state == "running" else "User initiated (2026-11-20 22:10:00 GMT)",
        "privateIpAddress": f"10.{1 if account == PROD else 2}.1.{int(iid[-2:], 16) % 200 + 10}",
        "publicIpAddress": public_ip, "subnetId": subnet, "vpcId": vpc,
        "securityGroups": [{"groupId": g, "groupName": n} for g, n in groups],
        "iamInstanceProfile": {"arn": profile, "id": "AIPA" + iid[-10:].upper()} if profile else None,
        "metadataOptions": {"httpTokens": "required" if imds_v2 else "optional", "httpEndpoint": "enabled",
                            "httpPutResponseHopLimit": 1, "state": "applied"},
        "monitoring": {"state": "disabled"},
        "tags": [{"key": "Name", "value": name}],
    }
    rel = [{"resourceType": "AWS::EC2::SecurityGroup", "resourceId": g, "resourceName": None, "relationshipName": "Is associated with SecurityGroup"} for g, _ in groups]
    rel.append({"resourceType": "AWS::EC2::Subnet", "resourceId": subnet, "resourceName": None, "relationshipName": "Is contained in Subnet"})
    return item(account, region, "AWS::EC2::Instance", iid, name, arn, conf, captured, tags={"Name": name},
                relationships=rel, az=f"{region}a")


def network(account, region, n, captured):
    """VPC, subnet, internet gateway, route table and network ACL of one region."""
    base = f"{1 if account == PROD else 2}{n}"
    vpc, subnet = f"vpc-0{base}aa11bb22cc33d", f"subnet-0{base}aa11bb22cc33d"
    igw, rtb, acl = f"igw-0{base}aa11bb22cc33d", f"rtb-0{base}aa11bb22cc33d", f"acl-0{base}aa11bb22cc33d"
    cidr = f"10.{base}.0.0/16"
    items = [
        item(account, region, "AWS::EC2::VPC", vpc, None, f"arn:aws:ec2:{region}:{account}:vpc/{vpc}",
             {"cidrBlock": cidr, "dhcpOptionsId": "dopt-0123abcd", "state": "available", "vpcId": vpc,
              "ownerId": account, "instanceTenancy": "default", "isDefault": False,
              "cidrBlockAssociationSet": [{"associationId": f"vpc-cidr-assoc-0{base}", "cidrBlock": cidr, "cidrBlockState": {"state": "associated"}}],
              "ipv6CidrBlockAssociationSet": [], "tags": []}, captured),
        item(account, region, "AWS::EC2::Subnet", subnet, None, f"arn:aws:ec2:{region}:{account}:subnet/{subnet}",
             {"availabilityZone": f"{region}a", "availableIpAddressCount": 250 - n, "cidrBlock": f"10.{base}.1.0/24",
              "defaultForAz": False, "mapPublicIpOnLaunch": True, "state": "available", "subnetId": subnet,
              "vpcId": vpc, "ownerId": account, "ipv6CidrBlockAssociationSet": [], "tags": []}, captured, az=f"{region}a"),
        item(account, region, "AWS::EC2::InternetGateway", igw, None, f"arn:aws:ec2:{region}:{account}:internet-gateway/{igw}",
             {"attachments": [{"state": "available", "vpcId": vpc}], "internetGatewayId": igw, "ownerId": account, "tags": []}, captured),
        item(account, region, "AWS::EC2::RouteTable", rtb, None, f"arn:aws:ec2:{region}:{account}:route-table/{rtb}",
             {"associations": [{"main": False, "routeTableAssociationId": f"rtbassoc-0{base}", "routeTableId": rtb,
                                "subnetId": subnet, "associationState": {"state": "associated"}}],
              "routes": [{"destinationCidrBlock": cidr, "gatewayId": "local", "origin": "CreateRouteTable", "state": "active"},
                         {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": igw, "origin": "CreateRoute", "state": "active"}],
              "routeTableId": rtb, "vpcId": vpc, "ownerId": account, "tags": []}, captured),
        item(account, region, "AWS::EC2::NetworkAcl", acl, None, f"arn:aws:ec2:{region}:{account}:network-acl/{acl}",
             {"associations": [{"networkAclAssociationId": f"aclassoc-0{base}", "networkAclId": acl, "subnetId": subnet}],
              "entries": [
                  {"cidrBlock": "0.0.0.0/0", "egress": False, "protocol": "-1", "ruleAction": "allow", "ruleNumber": 100},
                  {"cidrBlock": "0.0.0.0/0", "egress": False, "protocol": "-1", "ruleAction": "deny", "ruleNumber": 32767},
                  {"cidrBlock": "0.0.0.0/0", "egress": True, "protocol": "-1", "ruleAction": "allow", "ruleNumber": 100},
                  {"cidrBlock": "0.0.0.0/0", "egress": True, "protocol": "-1", "ruleAction": "deny", "ruleNumber": 32767}],
              "isDefault": True, "networkAclId": acl, "vpcId": vpc, "ownerId": account, "tags": []}, captured),
    ]
    return vpc, subnet, items


def ec2_items(account, region, day):
    n = REGIONS.index(region) + 1
    vpc, subnet, out = network(account, region, n, DAY1)
    a = "1" if account == PROD else "2"
    g = lambda k: f"sg-0{a}{n}{k}0aa11bb22cc3"  # noqa: E731
    i = lambda k: f"i-0{a}{n}{k}0aa11bb22cc3"   # noqa: E731
    profile = f"arn:aws:iam::{account}:instance-profile/app-role"
    # Misconfigured (CIS): the default group still allows traffic between its members.
    out.append(sg(account, region, g(0), "default", vpc, DAY1, [perm("-1", None, None, groups=[g(0)])]))
    out.append(sg(account, region, g(1), "web", vpc, DAY1, [perm("tcp", 443, 443, ["0.0.0.0/0"], ["::/0"]),
                                                              perm("tcp", 80, 80, ["0.0.0.0/0"], ["::/0"])],
                  tags={"owner": "web"}, instances=[i(1)]))
    out.append(sg(account, region, g(2), "database", vpc, DAY1, [perm("tcp", 5432, 5432, groups=[g(1)])],
                  tags={"owner": "payments"}))
    # Egress only to the internet: not inbound exposure.
    out.append(sg(account, region, g(3), "outbound-only", vpc, DAY1, [], tags={"owner": "platform"}))
    if account == PROD and region == "us-east-1":
        # Changed on day 2: someone opens RDP to the world on the admin group.
        ingress = [perm("tcp", 22, 22, ["10.0.0.0/8"])]
        if day == 2:
            ingress.append(perm("tcp", 3389, 3389, ["0.0.0.0/0"]))
        out.append(sg(account, region, g(4), "admin-access", vpc, DAY1 if day == 1 else DAY2, ingress,
                      tags={"owner": "platform"}, instances=[i(2)]))
    if account == DEV and region == "us-east-1":
        # Misconfigured on day 1: SSH from anywhere (and all ports from a /0 over IPv6); fixed on day 2.
        ingress = ([perm("tcp", 22, 22, ["0.0.0.0/0"]), perm("-1", None, None, cidrs6=["::/0"])] if day == 1
                   else [perm("tcp", 22, 22, ["10.2.0.0/16"])])
        out.append(sg(account, region, g(4), "bastion", vpc, DAY1 if day == 1 else DAY2, ingress,
                      tags={"owner": "platform"}, instances=[i(2)]))
    if account == DEV and region == "eu-west-1" and day == 2:
        # Created on day 2: a database port open to the internet.
        out.append(sg(account, region, g(5), "analytics-db", vpc, DAY2, [perm("tcp", 3306, 3306, ["0.0.0.0/0"])],
                      tags={"owner": "data"}))
    # Instances. The worker is stopped on day 2: state is ephemeral, so no revision.
    out.append(instance(account, region, i(1), "web-1", vpc, subnet, [(g(1), "web")], DAY1, "running",
                        public_ip=f"203.0.113.{10 * int(a) + n}", profile=profile))
    out.append(instance(account, region, i(3), "worker-1", vpc, subnet, [(g(2), "database")],
                        DAY1, "running" if day == 1 else "stopped", profile=profile))
    if region == "us-east-1":
        # IMDSv1 allowed and a public address: misconfigured.
        name, grp = ("admin-jump", (g(4), "admin-access")) if account == PROD else ("bastion-1", (g(4), "bastion"))
        out.append(instance(account, region, i(2), name, vpc, subnet, [grp], DAY1, "running",
                            public_ip=f"198.51.100.{10 * int(a) + n}", imds_v2=False))
    if region == "eu-west-1" and day == 1:
        # Terminated before day 2.
        out.append(instance(account, region, i(4), "batch-old", vpc, subnet, [(g(3), "outbound-only")], DAY1, "running"))
    return out


# ---------------------------------------------------------------- files

def snapshot(account, region, day):
    items = s3_items(account, region, day) + ec2_items(account, region, day)
    if region == "us-east-1":  # global resources are recorded in one region
        items = iam_items(account, day) + items
    return items


def write(day):
    stamp, folder = (DAY1_FILE, "day1") if day == 1 else (DAY2_FILE, "day2")
    root = os.path.join(HERE, folder)
    shutil.rmtree(root, ignore_errors=True)
    for account in (PROD, DEV):
        for region in REGIONS:
            sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{region}/{stamp}"))
            rel = os.path.join("AWSLogs", account, "Config", region, stamp[:4], str(int(stamp[4:6])), str(int(stamp[6:8])),
                               "ConfigSnapshot", f"{account}_Config_{region}_ConfigSnapshot_{stamp}_{sid}.json")
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            body = {"fileVersion": "1.0", "configSnapshotId": sid, "configurationItems": snapshot(account, region, day)}
            with open(path, "w") as f:
                json.dump(body, f, indent=1, sort_keys=False)
                f.write("\n")


if __name__ == "__main__":
    write(1)
    write(2)
