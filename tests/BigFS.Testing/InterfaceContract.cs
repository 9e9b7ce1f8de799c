using System.Reflection;

namespace BigFS.Testing;

/// <summary>
/// Interfaces whose members all have default implementations (IFuseFileSystem: a filesystem
/// implements only the operations it supports) do not notice when an implementation's method
/// stops matching a changed signature: it becomes a look-alike overload and the default (ENOSYS)
/// answers instead. These checks find such methods.
/// </summary>
public static class InterfaceContract
{
    /// <summary>Public methods of <paramref name="implementation"/> named like a member of <paramref name="contract"/> that implement none.</summary>
    public static List<string> LookAlikes(Type implementation, Type contract)
    {
        var implemented = implementation.GetInterfaceMap(contract).TargetMethods.ToHashSet();
        var names = contract.GetMethods().Select(m => m.Name).ToHashSet();
        return implementation.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => names.Contains(m.Name) && !implemented.Contains(m))
            .Select(m => m.ToString()!)
            .ToList();
    }
}
