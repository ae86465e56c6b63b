namespace Amazon.Lambda.Core
{
    /// <summary>The logger of an invocation (context.Logger).</summary>
    /// <remarks>Amazon.Lambda.Core 2.2+ declares the leveled methods (LogInformation …) as default interface
    /// methods, which Mono's C# compiler cannot build; here they are extension methods of the same names
    /// (<see cref="LambdaLoggerLevelExtensions"/>), so calls such as <c>context.Logger.LogInformation("…")</c>
    /// compile and behave the same.</remarks>
    public interface ILambdaLogger
    {
        /// <summary>Writes a message as is (no line end).</summary>
        void Log(string message);

        /// <summary>Writes a message as one log line.</summary>
        void LogLine(string message);
    }

    /// <summary>Log levels of the leveled logging methods.</summary>
    public enum LogLevel
    {
        /// <summary>Trace</summary>
        Trace = 0,
        /// <summary>Debug</summary>
        Debug = 1,
        /// <summary>Information</summary>
        Information = 2,
        /// <summary>Warning</summary>
        Warning = 3,
        /// <summary>Error</summary>
        Error = 4,
        /// <summary>Critical</summary>
        Critical = 5,
    }

    /// <summary>What the runtime's logger implements beyond <see cref="ILambdaLogger"/>.</summary>
    internal interface ILeveledLambdaLogger
    {
        void Log(string level, System.Exception exception, string message, object[] args);
    }
}
