#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Calls the read-back actions on the simulator with Alibaba Cloud's official Python SDK.

ListOTATaskByJob (a job's tasks, filtered by DeviceNames.N) or ListOTAUnfinishedTaskByDevice (one device's
unfinished tasks in the states of TaskStatusList.N), built and signed by the SDK's own request classes exactly as
against iot.<region>.aliyuncs.com; only the endpoint and the protocol (http) point it at the simulator. Run by
OfficialSDKTests.swift in the same virtual environment as official_sdk_cancel.py.

Prints one JSON object:
  {"ok": true, "body": {...}, "stringToSign": "..."}                         on success
  {"ok": false, "code", "httpStatus", "rawBody": {...}, "stringToSign"}      on a server error
"""
import argparse
import json
import warnings

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkiot.request.v20180120.ListOTATaskByJobRequest import ListOTATaskByJobRequest
from aliyunsdkiot.request.v20180120.ListOTAUnfinishedTaskByDeviceRequest import (
    ListOTAUnfinishedTaskByDeviceRequest,
)


def make_request(arguments):
    if arguments.action == "ListOTATaskByJob":
        request = ListOTATaskByJobRequest()
        request.set_JobId(arguments.job)
        request.set_PageSize(arguments.page_size)
        request.set_CurrentPage(1)
        # The SDK's own (doubled) spelling: it sends DeviceNames.1, DeviceNames.2, ...
        request.set_DeviceNamess(arguments.device)
    else:
        request = ListOTAUnfinishedTaskByDeviceRequest()
        request.set_ProductKey(arguments.product)
        request.set_DeviceName(arguments.device[0])
        request.set_TaskStatusLists(arguments.status)
    request.set_endpoint(arguments.endpoint)
    request.set_protocol_type("http")
    request.set_method(arguments.method)
    return request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--action", choices=["ListOTATaskByJob", "ListOTAUnfinishedTaskByDevice"], required=True)
    parser.add_argument("--endpoint", required=True, help="host:port of the simulator")
    parser.add_argument("--method", choices=["GET", "POST"], required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--region", default="cn-shanghai")
    parser.add_argument("--product")
    parser.add_argument("--job")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--device", action="append", required=True)
    parser.add_argument("--status", action="append", default=[])
    arguments = parser.parse_args()

    client = AcsClient(arguments.access_key_id, arguments.secret, arguments.region)
    request = make_request(arguments)
    try:
        body = client.do_action_with_exception(request)
        result = {"ok": True, "body": json.loads(body), "stringToSign": request.string_to_sign}
    except ServerException as error:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = client.do_action(make_request(arguments))
        result = {
            "ok": False,
            "code": error.get_error_code(),
            "httpStatus": error.get_http_status(),
            "stringToSign": request.string_to_sign,
            "rawBody": json.loads(raw),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
