using System.Net;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// One end of a connection: a pod (namespace, its labels, the pod's labels) or an address outside
/// the cluster.
/// </summary>
internal sealed record Endpoint(string Description, string? Namespace, IReadOnlyDictionary<string, string> NamespaceLabels, IReadOnlyDictionary<string, string> PodLabels, IPAddress? Address)
{
    public static Endpoint Pod(string description, string @namespace, IReadOnlyDictionary<string, string> podLabels, IReadOnlyDictionary<string, string>? namespaceLabels = null) =>
        new(description, @namespace, namespaceLabels ?? new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = @namespace }, podLabels, null);

    public static Endpoint External(string address) =>
        new(address, null, new Dictionary<string, string>(), new Dictionary<string, string>(), IPAddress.Parse(address));

    public override string ToString() => Description;
}

/// <summary>What the NetworkPolicies of a rendered overlay allow, following the networking.k8s.io/v1 rules.</summary>
internal sealed class NetworkPolicies(Rendered rendered)
{
    private readonly List<K8sObject> _policies = [.. rendered.OfKind("NetworkPolicy")];
    private readonly string? _namespace = rendered.OfKind("NetworkPolicy").Select(p => p.Namespace).FirstOrDefault();

    /// <summary>
    /// True when a connection from <paramref name="from"/> to <paramref name="to"/> on the port is allowed:
    /// the source's egress (when the source is governed by policies of this overlay) and the destination's ingress.
    /// </summary>
    public bool Allows(Endpoint from, Endpoint to, int port, string protocol = "TCP") =>
        Side(from, to, port, protocol, "Egress", "egress", "to") && Side(to, from, port, protocol, "Ingress", "ingress", "from");

    /// <summary>The policies that govern <paramref name="pod"/> in the direction (Ingress or Egress).</summary>
    public IEnumerable<K8sObject> Governing(Endpoint pod, string policyType) =>
        _policies.Where(policy => Selects(policy, pod) && PolicyTypes(policy).Contains(policyType));

    private bool Side(Endpoint subject, Endpoint peer, int port, string protocol, string policyType, string rulesField, string peersField)
    {
        if (subject.Address is not null || subject.Namespace != _namespace)
        {
            return true; // outside this overlay's policies: not ours to restrict
        }

        var governing = Governing(subject, policyType).ToList();
        if (governing.Count == 0)
        {
            return true;
        }

        return governing.Any(policy => policy.Spec.List(rulesField).Any(rule =>
            PortAllowed(rule, port, protocol) && PeerAllowed(rule, peersField, peer, policy.Namespace!)));
    }

    private static bool Selects(K8sObject policy, Endpoint pod) =>
        pod.Address is null && pod.Namespace == policy.Namespace && Selectors.Matches(policy.Spec.At("podSelector") ?? new Dictionary<string, object?>(), pod.PodLabels);

    private static List<string> PolicyTypes(K8sObject policy)
    {
        var declared = policy.Spec.List("policyTypes").OfType<string>().ToList();
        if (declared.Count > 0)
        {
            return declared;
        }

        return policy.Spec.At("egress") is null ? ["Ingress"] : ["Ingress", "Egress"];
    }

    private static bool PortAllowed(object? rule, int port, string protocol)
    {
        var ports = rule.List("ports");
        if (ports.Count == 0)
        {
            return true;
        }

        return ports.Any(entry =>
        {
            if ((entry.Text("protocol") ?? "TCP") != protocol)
            {
                return false;
            }

            var text = entry.Text("port");
            if (text is null)
            {
                return true;
            }

            if (!int.TryParse(text, out var first))
            {
                throw new XunitException($"Named port '{text}' in a NetworkPolicy: these tests check numeric ports only.");
            }

            var last = int.TryParse(entry.Text("endPort"), out var end) ? end : first;
            return port >= first && port <= last;
        });
    }

    private static bool PeerAllowed(object? rule, string peersField, Endpoint peer, string policyNamespace)
    {
        var peers = rule.List(peersField);
        if (peers.Count == 0)
        {
            return true;
        }

        return peers.Any(entry =>
        {
            if (entry.At("ipBlock") is { } block)
            {
                return peer.Address is not null
                    && IPNetwork.Parse(block.Text("cidr")!).Contains(peer.Address)
                    && !block.List("except").OfType<string>().Any(except => IPNetwork.Parse(except).Contains(peer.Address));
            }

            if (peer.Address is not null)
            {
                return false;
            }

            var namespaceSelector = entry.At("namespaceSelector");
            var podSelector = entry.At("podSelector");
            var namespaceOk = namespaceSelector is null
                ? peer.Namespace == policyNamespace
                : Selectors.Matches(namespaceSelector, peer.NamespaceLabels);
            var podOk = podSelector is null || Selectors.Matches(podSelector, peer.PodLabels);
            return namespaceOk && podOk;
        });
    }
}
