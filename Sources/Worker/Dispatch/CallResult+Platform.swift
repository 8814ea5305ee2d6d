// SPDX-License-Identifier: Apache-2.0
import PlatformAPI

extension CallResult {
    /// The platform client's account of a call, as the scheduler needs it.
    init(_ result: PlatformCallResult) {
        switch result.result {
        case .success(let response):
            self.init(kind: .succeeded, requestId: response.requestId, attempts: result.attempts)
        case .failure(let error):
            let kind: CallResult.Kind =
                error == .cancelled || error == .shutdown
                ? .interrupted : error.isTransient ? .transientFailure : .permanentFailure
            self.init(
                kind: kind,
                requestId: error.requestId ?? result.requestIds.last,
                code: error.platformCode ?? Self.workerCode(error.code),
                message: error.message,
                httpStatus: error.httpStatus,
                attempts: result.attempts
            )
        }
    }

    /// The contract's name for a failure the platform did not name itself.
    static func workerCode(_ code: PlatformAPIError.Code) -> String {
        switch code {
        case .transport: "Transport"
        case .timeout: "Timeout"
        case .httpStatus: "HTTPStatus"
        case .invalidResponse: "InvalidResponse"
        case .invalidRequest: "InvalidRequest"
        case .deadlineExceeded: "DeadlineExceeded"
        case .cancelled: "Cancelled"
        case .shutdown: "Shutdown"
        default: "Platform"
        }
    }
}
