using System;

namespace Amazon.Lambda.Core
{
    /// <summary>The leveled logging methods of <see cref="ILambdaLogger"/> (default interface methods in
    /// Amazon.Lambda.Core 2.2+, extension methods here). On the runtime's logger they write with the level;
    /// on any other implementation they fall back to <c>LogLine</c>, as the interface defaults do.</summary>
    public static class LambdaLoggerLevelExtensions
    {
        private static void Write(ILambdaLogger logger, string level, Exception exception, string message, object[] args)
        {
            var leveled = logger as ILeveledLambdaLogger;
            if (leveled != null)
            {
                leveled.Log(level, exception, message, args);
                return;
            }
            var text = args != null && args.Length > 0 ? MessageTemplate.Format(message, args) : message;
            if (exception != null)
                text = string.IsNullOrEmpty(text) ? exception.ToString() : text + "\n" + exception;
            logger.LogLine(text);
        }

        /// <summary>Writes a message at a level given by name.</summary>
        public static void Log(this ILambdaLogger logger, string level, string message) { Write(logger, level, null, message, null); }
        /// <summary>Writes a message at a level given by name, filling the message template.</summary>
        public static void Log(this ILambdaLogger logger, string level, string message, params object[] args) { Write(logger, level, null, message, args); }
        /// <summary>Writes a message and an exception at a level given by name.</summary>
        public static void Log(this ILambdaLogger logger, string level, Exception exception, string message, params object[] args) { Write(logger, level, exception, message, args); }
        /// <summary>Writes a message at a level.</summary>
        public static void Log(this ILambdaLogger logger, LogLevel level, string message) { Write(logger, level.ToString(), null, message, null); }
        /// <summary>Writes a message at a level, filling the message template.</summary>
        public static void Log(this ILambdaLogger logger, LogLevel level, string message, params object[] args) { Write(logger, level.ToString(), null, message, args); }
        /// <summary>Writes a message and an exception at a level.</summary>
        public static void Log(this ILambdaLogger logger, LogLevel level, Exception exception, string message, params object[] args) { Write(logger, level.ToString(), exception, message, args); }

        /// <summary>Trace</summary>
        public static void LogTrace(this ILambdaLogger logger, string message) { Write(logger, "Trace", null, message, null); }
        /// <summary>Trace</summary>
        public static void LogTrace(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Trace", null, message, args); }
        /// <summary>Trace</summary>
        public static void LogTrace(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Trace", exception, message, args); }
        /// <summary>Debug</summary>
        public static void LogDebug(this ILambdaLogger logger, string message) { Write(logger, "Debug", null, message, null); }
        /// <summary>Debug</summary>
        public static void LogDebug(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Debug", null, message, args); }
        /// <summary>Debug</summary>
        public static void LogDebug(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Debug", exception, message, args); }
        /// <summary>Information</summary>
        public static void LogInformation(this ILambdaLogger logger, string message) { Write(logger, "Information", null, message, null); }
        /// <summary>Information</summary>
        public static void LogInformation(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Information", null, message, args); }
        /// <summary>Information</summary>
        public static void LogInformation(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Information", exception, message, args); }
        /// <summary>Warning</summary>
        public static void LogWarning(this ILambdaLogger logger, string message) { Write(logger, "Warning", null, message, null); }
        /// <summary>Warning</summary>
        public static void LogWarning(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Warning", null, message, args); }
        /// <summary>Warning</summary>
        public static void LogWarning(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Warning", exception, message, args); }
        /// <summary>Error</summary>
        public static void LogError(this ILambdaLogger logger, string message) { Write(logger, "Error", null, message, null); }
        /// <summary>Error</summary>
        public static void LogError(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Error", null, message, args); }
        /// <summary>Error</summary>
        public static void LogError(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Error", exception, message, args); }
        /// <summary>Critical</summary>
        public static void LogCritical(this ILambdaLogger logger, string message) { Write(logger, "Critical", null, message, null); }
        /// <summary>Critical</summary>
        public static void LogCritical(this ILambdaLogger logger, string message, params object[] args) { Write(logger, "Critical", null, message, args); }
        /// <summary>Critical</summary>
        public static void LogCritical(this ILambdaLogger logger, Exception exception, string message, params object[] args) { Write(logger, "Critical", exception, message, args); }
    }
}
