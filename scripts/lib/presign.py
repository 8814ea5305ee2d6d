#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes pre-signed, distinct CancelOTATaskByDevice request paths for load tests of the simulator.

Each line is a path with its query (`/?AccessKeyId=...&Signature=...`): the aliyun profile's parameters, a
fresh SignatureNonce per line, the current Timestamp (valid for the simulator's 15 minutes), one device of the
simulator's generated set (`dev-000001`...). Signed per reference/platform-api.md section 1.1 with Python's
standard library only, so the load generator shares no code with the server it measures.

Usage: presign.py OUT COUNT [--devices N] [--method GET|POST] [--access-key-id ID] [--secret S]
"""
import argparse
import base64
import hashlib
import hmac
import os
import time
from urllib.parse import quote


def encode(text):
    return quote(text.encode("utf-8"), safe="~")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("count", type=int)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--method", default="GET", choices=["GET", "POST"])
    parser.add_argument("--access-key-id", default="testid")
    parser.add_argument("--secret", default="testsecret")
    arguments = parser.parse_args()

    key = (arguments.secret + "&").encode("utf-8")
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run = os.urandom(6).hex()
    common = {
        "AccessKeyId": arguments.access_key_id,
        "Action": "CancelOTATaskByDevice",
        "FirmwareId": "demoFirmware",
        "Format": "JSON",
        "ProductKey": "demoProduct",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": timestamp,
        "Version": "2018-01-20",
    }
    with open(arguments.out, "w") as out:
        for index in range(arguments.count):
            parameters = dict(common)
            parameters["SignatureNonce"] = "%s%010d" % (run, index)
            parameters["DeviceName.1"] = "dev-%06d" % (index % arguments.devices + 1)
            canonical = "&".join(encode(k) + "=" + encode(v) for k, v in sorted(parameters.items()))
            to_sign = arguments.method + "&%2F&" + encode(canonical)
            signature = base64.b64encode(hmac.new(key, to_sign.encode("utf-8"), hashlib.sha1).digest()).decode()
            out.write("/?" + canonical + "&Signature=" + encode(signature) + "\n")


if __name__ == "__main__":
    main()
