using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// Markers in units other than the catalog's, read through the gRPC API: commensurable UCUM units are
/// converted and compared with the critical limits; units that are not are flagged, never guessed.
/// InterpretMarkers stores nothing, so one backend is enough.
/// </summary>
public sealed class UnitsApiTests(SqliteResultsMesh fixture) : IClassFixture<SqliteResultsMesh>
{
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    // (slug, value, unit, computed interpretation, converted value in the catalog's unit)
    public static TheoryData<string, double, string, Interpretation, string> Commensurable() => new()
    {
        // g/L against the catalog's g/dL (hemoglobin 6.6 and 20 g/dL are the limits).
        { "hemoglobin", 66, "g/L", Interpretation.Critical, "6.6 g/dL" },
        { "hemoglobin", 120, "g/L", Interpretation.Unspecified, "12 g/dL" },
        { "hemoglobin", 200, "g/L", Interpretation.Critical, "20 g/dL" },
        // mEq/L against mmol/L for monovalent ions (potassium 2.8/6.2, sodium 120/158 mmol/L).
        { "potassium", 6.2, "mEq/L", Interpretation.Critical, "6.2 mmol/L" },
        { "potassium", 4.1, "meq/l", Interpretation.Unspecified, "4.1 mmol/L" },
        { "sodium", 119, "mEq/L", Interpretation.Critical, "119 mmol/L" },
        // Other commensurable units, read as UCUM codes.
        { "glucose", 0.4, "g/L", Interpretation.Critical, "40 mg/dL" },
        { "glucose", 900, "mg/L", Interpretation.Unspecified, "90 mg/dL" },
        { "potassium", 2500, "umol/L", Interpretation.Critical, "2.5 mmol/L" },
        { "platelets", 30, "10*3/mm3", Interpretation.Critical, "30 x10^9/L" },
        // A molar mass (glucose 180.16 g/mol) with UCUM before it: 2 000 umol/L = 2 mmol/L = 36.03 mg/dL.
        { "glucose", 2000, "umol/L", Interpretation.Critical, "36.03 mg/dL" },
    };

    [Theory]
    [MemberData(nameof(Commensurable))]
    public async Task InterpretMarkers_CommensurableUnit_IsConvertedAndCompared(
        string slug, double value, string unit, Interpretation computed, string converted)
    {
        var reading = await ReadAsync(slug, value, unit);

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(slug, reading.CriticalLimitAnalyte);
        Assert.Equal(converted, reading.ConvertedValue);
        Assert.DoesNotContain(MarkerFlag.UnitNotComparable, reading.Flags);
    }

    // (slug, value, unit): critical in any reading that guessed, yet not commensurable.
    public static TheoryData<string, double, string> NotCommensurable() => new()
    {
        // Calcium is divalent: 1 mmol/L = 2 mEq/L, so mEq/L is not taken as mmol/L (nor as mg/dL).
        { "calcium", 1.0, "mEq/L" },
        // Mass against amount of substance without a molar mass.
        { "potassium", 50, "mg/dL" },
        { "hemoglobin", 2, "mmol/L" },
        // A count of moles against a count of cells, an arbitrary unit against a molar concentration.
        { "platelets", 5, "mmol/L" },
        { "sodium", 500, "mIU/L" },
        // Not UCUM, not a known spelling.
        { "platelets", 5, "x10^3/mm3" },
        { "inr", 9, "s" },
    };

    [Theory]
    [MemberData(nameof(NotCommensurable))]
    public async Task InterpretMarkers_UnitNotCommensurable_IsFlaggedNotGuessed(string slug, double value, string unit)
    {
        var reading = await ReadAsync(slug, value, unit);

        Assert.Equal(Interpretation.Unspecified, reading.ComputedInterpretation);
        Assert.Equal("", reading.CriticalLimitAnalyte);
        Assert.Equal("", reading.ConvertedValue);
        Assert.Equal([MarkerFlag.UnitNotComparable], reading.Flags);
    }

    private async Task<MarkerReading> ReadAsync(string slug, double value, string unit)
    {
        var request = new InterpretMarkersRequest { Results = { ResultsServiceTests.Numeric(slug, value, unit) } };
        var response = await fixture.Mesh.ResultsClient(_team).InterpretMarkersAsync(request, deadline: Deadline);
        return Assert.Single(response.Results).Reading;
    }
}
