#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Send one cancel command to ota-cancel-worker and wait for its correlated reply (MQTT 5 request/response).

The way a rollback script integrates, in plain paho-mqtt (pip install paho-mqtt==2.1.0):

    python3 examples/python/request.py --port 1883 --product-key demoProduct --firmware-id demoFirmware \
        --job-id demoJob dev-000901 dev-000902

It subscribes to a reply topic of its own (under ota/cancel/reply/, the worker's default allow-list), publishes
the command with QoS 1, that topic as the MQTT 5 Response Topic and a fresh Correlation Data, and prints the reply
whose Correlation Data matches: JSON, one line. Exit status: 0 succeeded, 1 partial or failed, 2 rejected or
expired, 3 no reply within --timeout, 4 no connection. The contract is asyncapi.yaml at the top of the project.
"""
import argparse
import json
import sys
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("devices", nargs="+", help="device names")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--product-key", required=True)
    parser.add_argument("--firmware-id", required=True)
    parser.add_argument("--job-id")
    parser.add_argument("--reason")
    parser.add_argument("--topic", default="ota/cancel/request")
    parser.add_argument("--timeout", type=float, default=30)
    arguments = parser.parse_args()

    command = {
        "productKey": arguments.product_key,
        "firmwareId": arguments.firmware_id,
        "deviceNames": arguments.devices,
    }
    if arguments.job_id:
        command["jobId"] = arguments.job_id
    if arguments.reason:
        command["reason"] = arguments.reason

    correlation = uuid.uuid4().hex.encode()
    reply_topic = "ota/cancel/reply/example-" + uuid.uuid4().hex[:12]
    subscribed = threading.Event()
    answered = threading.Event()
    reply = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            print("connection refused: %s" % reason_code, file=sys.stderr)
            return
        client.subscribe(reply_topic, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        # Only the reply to this command: the Correlation Data comes back byte for byte.
        if getattr(message.properties, "CorrelationData", None) != correlation:
            return
        reply["payload"] = message.payload
        answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(arguments.host, arguments.port, keepalive=30)
    except OSError as error:
        print("cannot connect to %s:%d: %s" % (arguments.host, arguments.port, error), file=sys.stderr)
        return 4
    client.loop_start()
    try:
        if not subscribed.wait(arguments.timeout):
            print("no SUBACK from the broker", file=sys.stderr)
            return 4
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = reply_topic
        properties.CorrelationData = correlation
        properties.ContentType = "application/json"
        client.publish(arguments.topic, json.dumps(command), qos=1, properties=properties).wait_for_publish()
        if not answered.wait(arguments.timeout):
            print("no reply within %g s" % arguments.timeout, file=sys.stderr)
            return 3
    finally:
        client.loop_stop()
        client.disconnect()

    text = reply["payload"].decode("utf-8")
    print(text)
    status = json.loads(text).get("status")
    return {"succeeded": 0, "partial": 1, "failed": 1}.get(status, 2)


if __name__ == "__main__":
    sys.exit(main())
