#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An independent implementation of Alibaba Cloud's RPC signature v1.0 (reference/platform-api.md section 1.1).

Written from the reference text with nothing but Python's standard library (urllib.parse.quote, hmac,
hashlib, base64), so that the property test in Tests/PlatformSignatureTests/SignaturePropertyTests.swift compares our Swift signer with code
that shares none of its parts.

Input: a file of JSON lines, one case per line:
    {"method": "GET", "secret": "...", "parameters": [["Name", "value"], ...]}
Output (stdout): one JSON line per case, in order:
    {"stringToSign": "...", "signature": "..."}
"""
import base64
import hashlib
import hmac
import json
import sys
from urllib.parse import quote


def percent_encode(text):
    # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay; every other UTF-8 byte becomes %XY (upper-case hex).
    return quote(text.encode("utf-8"), safe="~")


def string_to_sign(method, parameters):
    pairs = [(name, value) for name, value in parameters if name != "Signature"]
    pairs.sort(key=lambda pair: pair[0].encode("utf-8"))  # byte order of the raw names
    canonical = "&".join(percent_encode(name) + "=" + percent_encode(value) for name, value in pairs)
    return method + "&" + percent_encode("/") + "&" + percent_encode(canonical)


def signature(secret, text):
    digest = hmac.new((secret + "&").encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def main():
    out = sys.stdout
    with open(sys.argv[1], encoding="utf-8") as cases:
        for line in cases:
            case = json.loads(line)
            text = string_to_sign(case["method"], case["parameters"])
            out.write(json.dumps({"stringToSign": text, "signature": signature(case["secret"], text)}) + "\n")


if __name__ == "__main__":
    main()
