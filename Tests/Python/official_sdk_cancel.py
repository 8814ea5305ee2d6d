#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Calls CancelOTATaskByDevice on the simulator with Alibaba Cloud's official Python SDK.

Run by OfficialSDKTests.swift inside a virtual environment holding aliyun-python-sdk-core and
aliyun-python-sdk-iot (pinned there). The SDK builds, signs and sends the request exactly as it would against
iot.<region>.aliyuncs.com; only the endpoint and the protocol (http) point it at the simulator.

Prints one JSON object:
  {"ok": true, "body": {...}, "stringToSign": "..."}                                  on success
  {"ok": false, "code", "httpStatus", "message", "requestId", "stringToSign",
   "rawBody": {...}}                                                                  on a server error
"rawBody" is the answer to a second, identical request sent with do_action (which returns the body as the
server wrote it): the SDK rewrites SignatureDoesNotMatch into InvalidAccessKeySecret when its string-to-sign
equals the server's, so the raw answer is needed to see the server's own code.
"""
import argparse
import json
import warnings

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkiot.request.v20180120.CancelOTATaskByDeviceRequest import CancelOTATaskByDeviceRequest


def make_request(arguments):
    request = CancelOTATaskByDeviceRequest()
    request.set_endpoint(arguments.endpoint)
    request.set_protocol_type("http")
    request.set_method(arguments.method)
    request.set_ProductKey(arguments.product)
    request.set_FirmwareId(arguments.firmware)
    request.set_DeviceNames(arguments.device)
    return request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="host:port of the simulator")
    parser.add_argument("--method", choices=["GET", "POST"], required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--region", default="cn-shanghai")
    parser.add_argument("--product", required=True)
    parser.add_argument("--firmware", required=True)
    parser.add_argument("--device", action="append", required=True)
    arguments = parser.parse_args()

    client = AcsClient(arguments.access_key_id, arguments.secret, arguments.region)
    request = make_request(arguments)
    try:
        body = client.do_action_with_exception(request)
        result = {"ok": True, "body": json.loads(body), "stringToSign": request.string_to_sign}
    except ServerException as error:
        raw_request = make_request(arguments)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = client.do_action(raw_request)
        result = {
            "ok": False,
            "code": error.get_error_code(),
            "httpStatus": error.get_http_status(),
            "message": error.get_error_msg(),
            "requestId": error.get_request_id(),
            "stringToSign": request.string_to_sign,
            "rawBody": json.loads(raw),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
