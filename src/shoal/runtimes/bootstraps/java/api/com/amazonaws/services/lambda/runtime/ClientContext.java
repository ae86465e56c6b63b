package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/**
 * The client context a mobile caller passed with a synchronous invocation.
 */
public interface ClientContext {

    /** The calling application. */
    Client getClient();

    /** Custom values set by the calling application. */
    Map<String, String> getCustom();

    /** Environment values of the calling device. */
    Map<String, String> getEnvironment();
}
