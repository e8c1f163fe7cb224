using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Google.Protobuf;
using Grpc.Net.Client;
using LabMesh.Grpc.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class TransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Tls_CallsSucceedOverHttp2WithAlpn()
    {
        using var certificate = CreateSelfSignedCertificate();
        await using var echo = await EchoServer.StartAsync(certificate: certificate);
        var handler = new SocketsHttpHandler { UseProxy = false };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
        using var channel = GrpcChannel.ForAddress(echo.Server.Address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpHandler = true });
        var client = new Echo.Echo.EchoClient(channel);
        var response = await client.UnaryAsync(new EchoRequest { Text = "secure" }).ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("secure", response.Text);
        var call = client.Duplex();
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "tls-stream" }).WaitAsync(Timeout);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal("HTTP/2", echo.Probe.LastProtocol);
    }

    [Fact]
    public async Task Tls_UntrustedCertificate_IsUnavailable()
    {
        using var certificate = CreateSelfSignedCertificate();
        await using var echo = await EchoServer.StartAsync(certificate: certificate);
        using var channel = GrpcChannel.ForAddress(echo.Server.Address);
        var client = new Echo.Echo.EchoClient(channel);
        var ex = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task NothingListening_IsUnavailable()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task StreamsBeyondOneConnectionsLimit_OpenAnotherConnection()
    {
        var connections = new ConcurrentDictionary<string, int>();
        await using var echo = await EchoServer.StartAsync(configureKestrel: k => k.Limits.Http2.MaxStreamsPerConnection = 2);
        var calls = new List<AsyncDuplexStreamingCall<EchoRequest, EchoResponse>>();
        for (var i = 0; i < 6; i++)
        {
            var call = echo.Client.Duplex();
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"c{i}" }).WaitAsync(Timeout);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            calls.Add(call);
        }
        // All six streams are open at once although one connection allows two.
        foreach (var call in calls)
        {
            await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
            Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            call.Dispose();
        }
    }

    [Theory]
    [InlineData(400, StatusCode.Internal)]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(403, StatusCode.PermissionDenied)]
    [InlineData(404, StatusCode.Unimplemented)]
    [InlineData(429, StatusCode.Unavailable)]
    [InlineData(502, StatusCode.Unavailable)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(504, StatusCode.Unavailable)]
    [InlineData(500, StatusCode.Unknown)]
    [InlineData(302, StatusCode.Unknown)]
    public async Task HttpStatusWithoutGrpcStatus_MapsToTheSpecifiedCode(int httpStatus, StatusCode expected)
    {
        // A proxy or plain HTTP server answering instead of a gRPC server.
        await using var server = await TestGrpcServer.StartAsync(null, app => app.MapPost("/labmesh.test.v1.Echo/Unary", http =>
        {
            http.Response.StatusCode = httpStatus;
            return http.Response.WriteAsync("not grpc");
        }));
        using var channel = server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(expected, ex.StatusCode);
    }

    [Fact]
    public async Task ResponseWithoutGrpcStatusTrailer_IsUnknown()
    {
        await using var server = await TestGrpcServer.StartAsync(null, app => app.MapPost("/labmesh.test.v1.Echo/Unary", async http =>
        {
            http.Response.ContentType = "application/grpc";
            await http.Response.Body.WriteAsync(RawHttp2.Frame(new EchoResponse { Text = "x" }.ToByteArray()));
        }));
        using var channel = server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
    }

    [Fact]
    public async Task ServerThatNeverAnswers_ClientDeadlineStillFires()
    {
        await using var server = await TestGrpcServer.StartAsync(null, app => app.MapPost("/labmesh.test.v1.Echo/Unary", async http =>
            await Task.Delay(System.Threading.Timeout.Infinite, http.RequestAborted)));
        using var channel = server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
    }

    internal static X509Certificate2 CreateSelfSignedCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }
}
