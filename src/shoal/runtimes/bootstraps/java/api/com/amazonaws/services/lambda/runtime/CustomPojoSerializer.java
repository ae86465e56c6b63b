package com.amazonaws.services.lambda.runtime;

import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Type;

/**
 * A replacement for the runtime's JSON conversion of handler inputs and outputs, found with
 * {@link java.util.ServiceLoader} on the function's class path.
 */
public interface CustomPojoSerializer {

    /** Reads a value of {@code type} from JSON bytes. */
    <T> T fromJson(InputStream input, Type type);

    /** Reads a value of {@code type} from a JSON string. */
    <T> T fromJson(String input, Type type);

    /** Writes {@code value} as JSON. */
    <T> void toJson(T value, OutputStream output, Type type);
}
