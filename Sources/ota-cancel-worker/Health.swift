// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Worker
import WorkerApp

/// `ota-cancel-worker health`: probe the worker's `/health/ready` (or `--url`), exit 0 when it answers 200, else 1.
///
/// Thin: the flags become ``HealthArguments`` and `HealthProbe.run` does the work (tested as a library). Its own
/// small options rather than `run`'s: it needs only where the endpoints are, and must not refuse the worker's
/// other settings.
struct Health: ParsableCommand, HealthArguments {
    static let configuration = CommandConfiguration(
        abstract: "Probe the worker's /health/ready (or --url): exit 0 when it answers 200, 1 otherwise.",
        discussion: """
            For container health checks (the image has no curl): Docker's HEALTHCHECK runs it beside the worker, \
            with the worker's environment, so --ops-host and --ops-port come from OTA_CANCEL_OPS_HOST and \
            OTA_CANCEL_OPS_PORT (or --config) as in 'run'; a wildcard host (0.0.0.0, ::) probes loopback. Prints \
            one line saying what it saw. Exit status: 0 healthy (HTTP 200), 1 unhealthy (another status, refused, \
            no answer within --timeout), 64 unusable options.
            """
    )

    @Option(help: "The worker's JSON settings file; only ops-host and ops-port are read. (default: OTA_CANCEL_CONFIG)")
    var config: String?

    @Option(help: "Address of the worker's health endpoints. (default: OTA_CANCEL_OPS_HOST, else 127.0.0.1)")
    var opsHost: String?

    @Option(help: "Port of the worker's health endpoints. (default: OTA_CANCEL_OPS_PORT, else 9464)")
    var opsPort: Int?

    @Option(help: "Probe this http:// URL instead, e.g. the simulator's http://127.0.0.1:8080/_sim/stats.")
    var url: String?

    @Option(help: "Seconds the probe may take. (default: 3)")
    var timeout: Double?

    func run() throws {
        let verdict: HealthProbe.Verdict
        do {
            verdict = try HealthProbe.run(self)
        } catch {
            throw ValidationError(error.message)
        }
        print(verdict.line)
        if !verdict.healthy { throw ExitCode(verdict.exitStatus) }
    }
}
