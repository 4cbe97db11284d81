import Logging

extension Logger {
    /// A client log for a command-line tool whose standard output is its result: warnings and
    /// errors only, on standard error.
    public static func stderrWarnings(_ label: String) -> Logger {
        var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        return logger
    }
}
