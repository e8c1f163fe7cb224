namespace Grpc.Core.Interceptors;

/// <summary>An interceptor type and the constructor arguments not taken from dependency injection.</summary>
public sealed class InterceptorRegistration
{
    internal InterceptorRegistration(Type type, object[] arguments)
    {
        if (!typeof(Interceptor).IsAssignableFrom(type))
        {
            throw new ArgumentException($"Type '{type}' does not derive from {nameof(Interceptor)}.", nameof(type));
        }
        Type = type;
        Arguments = arguments;
    }

    /// <summary>The interceptor type.</summary>
    public Type Type { get; }

    /// <summary>Extra constructor arguments.</summary>
    public IReadOnlyList<object> Arguments { get; }
}

/// <summary>
/// Server interceptors, outermost first. Each is resolved per call from dependency injection when
/// registered there, and otherwise created per call with the given arguments.
/// </summary>
public sealed class InterceptorCollection : List<InterceptorRegistration>
{
    /// <summary>Adds an interceptor type.</summary>
    public void Add<TInterceptor>(params object[] arguments)
        where TInterceptor : Interceptor => Add(typeof(TInterceptor), arguments);

    /// <summary>Adds an interceptor type.</summary>
    public void Add(Type interceptorType, params object[] arguments) =>
        Add(new InterceptorRegistration(interceptorType, arguments));
}
