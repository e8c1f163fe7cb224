using System.Globalization;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Notification;

/// <summary>The words the service writes in events and audit lines.</summary>
public static class NotificationWords
{
    /// <summary>"phone", "in_person", "app", "pager", "secure_message"; "unspecified" for none.</summary>
    public static string Channel(AcknowledgementChannel channel) => EnumWords.Word(channel) is { Length: > 0 } word ? word : "unspecified";

    /// <summary>A duration as people say it: "30m", "1h5m", "45s", "250ms".</summary>
    public static string Duration(TimeSpan duration)
    {
        if (duration < TimeSpan.FromSeconds(1))
        {
            return ((long)Math.Max(0, duration.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms";
        }

        var parts = new List<string>(3);
        if (duration.TotalHours >= 1)
        {
            parts.Add(((long)duration.TotalHours).ToString(CultureInfo.InvariantCulture) + "h");
        }

        if (duration.Minutes > 0)
        {
            parts.Add(duration.Minutes.ToString(CultureInfo.InvariantCulture) + "m");
        }

        if (duration.Seconds > 0 && duration < TimeSpan.FromHours(1))
        {
            parts.Add(duration.Seconds.ToString(CultureInfo.InvariantCulture) + "s");
        }

        return string.Concat(parts);
    }
}
