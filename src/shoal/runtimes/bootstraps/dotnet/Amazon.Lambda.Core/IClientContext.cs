using System.Collections.Generic;

namespace Amazon.Lambda.Core
{
    /// <summary>Client context sent by the AWS Mobile SDK.</summary>
    public interface IClientContext
    {
        /// <summary>Environment information set by the mobile SDK.</summary>
        IDictionary<string, string> Environment { get; }

        /// <summary>The client application.</summary>
        IClientApplication Client { get; }

        /// <summary>Custom values set by the client application.</summary>
        IDictionary<string, string> Custom { get; }
    }

    /// <summary>The application that invoked the function through the AWS Mobile SDK.</summary>
    public interface IClientApplication
    {
        /// <summary>The application's package name.</summary>
        string AppPackageName { get; }

        /// <summary>The application's title.</summary>
        string AppTitle { get; }

        /// <summary>The application's version code.</summary>
        string AppVersionCode { get; }

        /// <summary>The application's version name.</summary>
        string AppVersionName { get; }

        /// <summary>The installation id.</summary>
        string InstallationId { get; }
    }

    /// <summary>The Amazon Cognito identity of the caller.</summary>
    public interface ICognitoIdentity
    {
        /// <summary>The Cognito identity id.</summary>
        string IdentityId { get; }

        /// <summary>The Cognito identity pool id.</summary>
        string IdentityPoolId { get; }
    }
}
