package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/**
 * The runtime's low-level logger: each call is one log event in the function's log stream.
 */
public interface LambdaLogger {

    /** Logs a message as one log event. */
    void log(String message);

    /** Logs raw bytes as one log event. */
    void log(byte[] message);

    /** Logs a message at a level (filtered by the function's application log level). */
    default void log(String message, LogLevel logLevel) {
        log(message);
    }

    /** Logs raw bytes at a level (filtered by the function's application log level). */
    default void log(byte[] message, LogLevel logLevel) {
        log(message);
    }
}
