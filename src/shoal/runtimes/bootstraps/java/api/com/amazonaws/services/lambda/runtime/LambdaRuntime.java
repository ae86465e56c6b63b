package com.amazonaws.services.lambda.runtime;

import java.io.IOException;

/**
 * Access to the runtime's global logger, usable outside a handler call (static initialisers, libraries).
 */
public final class LambdaRuntime {

    private LambdaRuntime() {
    }

    // Replaced by the runtime at start-up (as AWS's runtime does); this default writes to standard output.
    private static volatile LambdaLogger logger = new LambdaLogger() {
        public void log(String message) {
            System.out.print(message);
        }

        public void log(byte[] message) {
            try {
                System.out.write(message);
            } catch (IOException e) {
                e.printStackTrace();
            }
        }
    };

    /** The global Lambda logger. */
    public static LambdaLogger getLogger() {
        return logger;
    }
}
