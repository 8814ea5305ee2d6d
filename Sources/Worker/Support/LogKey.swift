// SPDX-License-Identifier: Apache-2.0

/// The metadata keys of the worker's log records, in one place so that their style cannot drift.
///
/// The style: a namespace, a dot, then the name in snake_case (`ota.correlation_id`, `mqtt.session_present`,
/// `platform.request_id`). The namespaces are `ota` for the worker's own values (commands, journal, operations
/// endpoints), `mqtt` for the broker connection, `platform` for platform calls, and `error` for an error attached
/// to a record (`error.message`, `error.type`, set by the log handler). A unit goes at the end of the name
/// (`platform.delay_ms`); numbers are logged as numbers and lists as lists, so `--log-format json` gives them
/// their JSON types. The `Mosquitto` and `PlatformAPI` modules, which this one builds on, spell their own keys in
/// the same style; a test checks every key in the sources.
///
/// Every record about a command carries ``correlationId``; a platform call, which may carry the names of several
/// commands, carries ``correlationIds`` and ``commandCount`` instead.
public enum LogKey {
    // Commands.
    /// The command's correlation id (its `correlationId`, else its MQTT 5 Correlation Data as UTF-8), clipped.
    public static let correlationId = "ota.correlation_id"
    /// The correlation ids of the commands a platform call carries (at most ``CommandLog/maxCorrelationIds``).
    public static let correlationIds = "ota.correlation_ids"
    /// How many commands a platform call carries (``correlationIds`` may list fewer).
    public static let commandCount = "ota.command_count"
    /// The reply's status: `succeeded`, `partial`, `failed`, `rejected`, `expired`.
    public static let status = "ota.status"
    /// The device names a command carries.
    public static let devices = "ota.devices"
    /// The device names whose cancel failed.
    public static let failedDevices = "ota.failed_devices"
    /// Platform calls that carried a command's names.
    public static let calls = "ota.calls"
    /// What the read-back found: how many devices in each group (`canceled`, `already_upgraded`, `failed`,
    /// `still_active`, `no_task`, `unverified`), and the reads made.
    public static let readBack = "ota.read_back"
    /// How many of those calls also carried other commands' names.
    public static let sharedCalls = "ota.shared_calls"
    /// HTTP attempts of those calls, retries included.
    public static let attempts = "ota.attempts"
    public static let reason = "ota.reason"
    public static let requestedBy = "ota.requested_by"
    public static let productKey = "ota.product_key"
    public static let firmwareId = "ota.firmware_id"
    /// The codes of the problems a rejected command had (`SchemaViolation`, `ConflictingDuplicate`, ...).
    public static let errorCodes = "ota.error_codes"
    /// The messages of those problems.
    public static let errors = "ota.errors"
    /// Why something failed (a journal error, an undeliverable reply's reason).
    public static let error = "ota.error"
    /// The stable code of a dead letter (`InvalidJSON`, `PayloadTooLarge`, ...).
    public static let errorCode = "ota.error_code"
    /// The journal id of a stored message (reply, dead letter, notice).
    public static let entry = "ota.entry"
    public static let deadLetterTopic = "ota.dead_letter_topic"
    public static let replyTopic = "ota.reply_topic"
    /// The wait before a publication is tried again, in milliseconds.
    public static let retryInMilliseconds = "ota.retry_in_ms"

    // Journal and service.
    public static let journal = "ota.journal"
    public static let repliesToPublish = "ota.replies_to_publish"
    public static let commandsToRun = "ota.commands_to_run"
    public static let duplicatesWaiting = "ota.duplicates_waiting"
    public static let repliesLeft = "ota.replies_left"
    public static let deleted = "ota.deleted"
    /// The service's counters at the end of a run, as a dictionary (`ota.counters.received`, ...).
    public static let counters = "ota.counters"

    // Operations endpoints and state folder.
    public static let opsURL = "ota.ops_url"
    public static let opsMaxConnections = "ota.ops_max_connections"
    public static let opsCloseReason = "ota.ops_close_reason"
    public static let path = "ota.path"
    public static let lock = "ota.lock"
    public static let mode = "ota.mode"
    public static let modeWas = "ota.mode_was"
    public static let ownerUID = "ota.owner_uid"
    public static let wanted = "ota.wanted"

    // The broker connection (the Mosquitto module adds its own `mqtt.*` keys).
    public static let mqttTopic = "mqtt.topic"
    public static let mqttSessionPresent = "mqtt.session_present"
    public static let mqttError = "mqtt.error"
    public static let mqttRetryInMilliseconds = "mqtt.retry_in_ms"

    // Platform calls (the PlatformAPI module adds its own `platform.*` keys).
    public static let platformCode = "platform.code"
    public static let platformCodes = "platform.codes"
    public static let platformMessage = "platform.message"
    public static let platformRequestIds = "platform.request_ids"
    public static let platformHTTPStatus = "platform.http_status"
}
