/*
 * The one thing a pre-started JVM cannot do in Java: replace its process's own (C library) environment,
 * which child processes inherit and native code reads with getenv(). Loaded by shoal.runtime.Standby.
 */
#include <jni.h>
#include <stdlib.h>

JNIEXPORT jboolean JNICALL Java_shoal_runtime_Standby_replaceNativeEnvironment(JNIEnv *env, jclass cls,
                                                                               jobjectArray pairs) {
    (void)cls;
    if (clearenv() != 0) {
        return JNI_FALSE;
    }
    jsize n = (*env)->GetArrayLength(env, pairs);
    for (jsize i = 0; i + 1 < n; i += 2) {
        jstring key = (jstring)(*env)->GetObjectArrayElement(env, pairs, i);
        jstring value = (jstring)(*env)->GetObjectArrayElement(env, pairs, i + 1);
        const char *k = (*env)->GetStringUTFChars(env, key, NULL);
        const char *v = (*env)->GetStringUTFChars(env, value, NULL);
        int failed = (k == NULL || v == NULL) ? -1 : setenv(k, v, 1);
        if (k != NULL) (*env)->ReleaseStringUTFChars(env, key, k);
        if (v != NULL) (*env)->ReleaseStringUTFChars(env, value, v);
        (*env)->DeleteLocalRef(env, key);
        (*env)->DeleteLocalRef(env, value);
        if (failed != 0) {
            return JNI_FALSE;
        }
    }
    return JNI_TRUE;
}
