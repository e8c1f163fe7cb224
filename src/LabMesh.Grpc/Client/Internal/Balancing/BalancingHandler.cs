namespace Grpc.Net.Client.Internal.Balancing;

/// <summary>
/// Sends each call to the address the balancer picks: the request URI's authority becomes
/// <c>ip:port</c> (its own connection pool in SocketsHttpHandler) while the <c>Host</c> header keeps the
/// target's name, which HTTP/2 sends as <c>:authority</c> and TLS uses as SNI and as the name the
/// certificate is checked against. A call whose connection could not be made was never sent, so it moves
/// on to the next address; any later failure is the call's own.
/// </summary>
internal sealed class BalancingHandler(RoundRobinBalancer balancer, string authority, HttpMessageInvoker inner) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Host ??= authority;
        var path = request.RequestUri!.PathAndQuery;
        List<BalancerAddress>? tried = null;
        Exception? lastFailure = null;
        while (true)
        {
            var address = await balancer.PickAsync(tried, cancellationToken).ConfigureAwait(false);
            if (address is null)
            {
                throw lastFailure is null
                    ? new HttpRequestException(HttpRequestError.ConnectionError, balancer.DescribeFailure())
                    : new HttpRequestException(HttpRequestError.ConnectionError, $"{balancer.DescribeFailure()} Tried {tried!.Count}.", lastFailure);
            }
            request.RequestUri = address.GetUri(path);
            try
            {
                var response = await inner.SendAsync(request, cancellationToken).ConfigureAwait(false);
                address.ReportSuccess();
                return response;
            }
            catch (Exception ex) when (IsConnectFailure(ex, cancellationToken))
            {
                balancer.ReportConnectFailure(address, ex);
                (tried ??= []).Add(address);
                lastFailure = ex;
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            balancer.Dispose();
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// True when no connection could be made (refused, unreachable, connect timeout): the request never
    /// left, so another address may take it. Not for TLS failures, which every address would repeat.
    /// </summary>
    private static bool IsConnectFailure(Exception exception, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && exception switch
        {
            HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => true,
            OperationCanceledException { InnerException: TimeoutException } => true,
            _ => false,
        };
}
