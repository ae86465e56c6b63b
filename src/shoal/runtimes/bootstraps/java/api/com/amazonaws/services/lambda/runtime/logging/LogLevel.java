package com.amazonaws.services.lambda.runtime.logging;

/**
 * Log levels of {@link com.amazonaws.services.lambda.runtime.LambdaLogger}. {@code UNDEFINED} is the level of
 * the one-argument {@code log} calls and is never filtered.
 */
public enum LogLevel {
    UNDEFINED,
    TRACE,
    DEBUG,
    INFO,
    WARN,
    ERROR,
    FATAL;

    public static LogLevel fromString(String logLevel) {
        try {
            return LogLevel.valueOf(logLevel.toUpperCase());
        } catch (Exception e) {
            throw new IllegalArgumentException("Invalid log level: '" + logLevel
                    + "' expected one of [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]");
        }
    }
}
