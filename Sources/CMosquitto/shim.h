// SPDX-License-Identifier: Apache-2.0
// The C boundary of the project: includes only. mosquitto.h in 2.0.11 does not include mqtt_protocol.h,
// so both are named here (MQTT_PROP_*, MQTT_SUB_OPT_* live in the latter).
#ifndef CMOSQUITTO_SHIM_H
#define CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
