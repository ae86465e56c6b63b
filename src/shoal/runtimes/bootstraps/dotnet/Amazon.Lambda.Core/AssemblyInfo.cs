// Shoal's build of the Amazon.Lambda.Core API (the public types of the NuGet package of that name, same
// namespaces, names and signatures), compiled by mcs for Mono. Functions compile against it; the runtime
// provides it at run time, whatever copy a deployment package carries.
using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: AssemblyTitle("Amazon.Lambda.Core")]
[assembly: AssemblyVersion("2.5.0.0")]
[assembly: AssemblyFileVersion("2.5.0.0")]
[assembly: InternalsVisibleTo("bootstrap")]
[assembly: InternalsVisibleTo("Amazon.Lambda.Serialization.SystemTextJson")]
