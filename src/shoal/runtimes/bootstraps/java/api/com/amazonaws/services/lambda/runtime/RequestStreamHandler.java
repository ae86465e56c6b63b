package com.amazonaws.services.lambda.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * A handler that reads the raw event bytes and writes the raw result bytes.
 */
public interface RequestStreamHandler {

    /**
     * Handles one invocation.
     *
     * @param input the event bytes
     * @param output where the result bytes go
     * @param context the invocation's context
     * @throws IOException when reading or writing fails
     */
    void handleRequest(InputStream input, OutputStream output, Context context) throws IOException;
}
