package com.amazonaws.services.lambda.runtime;

/**
 * A handler whose input and output are plain Java objects, converted from and to JSON by the runtime.
 *
 * @param <I> the input type
 * @param <O> the output type
 */
public interface RequestHandler<I, O> {

    /**
     * Handles one invocation.
     *
     * @param input the event, converted from JSON
     * @param context the invocation's context
     * @return the result, converted to JSON
     */
    O handleRequest(I input, Context context);
}
