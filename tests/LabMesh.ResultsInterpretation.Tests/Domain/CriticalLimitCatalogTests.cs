using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using Microsoft.Extensions.Configuration;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class CriticalLimitCatalogTests
{
    private const string Survey = "survey means from a published clinical-laboratory reference table of critical limits";
    private const string ReferenceLab = "one large reference laboratory's critical-value list";

    [Fact]
    public void Default_HoldsTheDocumentedLimits()
    {
        var limits = CriticalLimitCatalog.Default.Entries.Select(e => (e.Analyte, e.Unit, e.Low, e.High));

        (string, string, double?, double?)[] expected =
        [
            ("potassium", "mmol/L", 2.8, 6.2),
            ("sodium", "mmol/L", 120, 158),
            ("glucose", "mg/dL", 46, 484),
            ("calcium", "mg/dL", 6.6, 12.9),
            ("hemoglobin", "g/dL", 6.6, 20),
            ("platelets", "x10^9/L", 37, 1000),
            ("inr", "", null, 5.0),
        ];
        Assert.Equal(expected, limits);
    }

    // (analyte, source)
    public static TheoryData<string, string> Sources() => new()
    {
        { "potassium", Survey },
        { "sodium", Survey },
        { "glucose", Survey },
        { "calcium", Survey },
        { "hemoglobin", $"low: {Survey}; high: {ReferenceLab}" },
        { "platelets", $"low: {Survey}; high: {ReferenceLab}" },
        { "inr", ReferenceLab },
    };

    [Theory]
    [MemberData(nameof(Sources))]
    public void Default_NamesTheSourceOfEachEntry(string analyte, string source) =>
        Assert.Equal(source, CriticalLimitCatalog.Default.Entries.Single(e => e.Analyte == analyte).Source);

    [Fact]
    public void Default_UsesTheDefaultConversions() =>
        Assert.Same(Units.DefaultConversions, CriticalLimitCatalog.Default.Conversions);

    // (slug, name, analyte found or "" for none)
    public static TheoryData<string, string, string> Lookups() => new()
    {
        { "potassium", "Potassium", "potassium" },
        { "k", "K", "potassium" },
        { "unknown", "Potassium, Serum", "potassium" },
        { "unknown", "K+", "potassium" },
        { "unknown", "Sodium", "sodium" },
        { "na", "", "sodium" },
        { "glu", "Glucose", "glucose" },
        { "unknown", "Glucose, Fasting", "glucose" },
        { "ca", "Calcium", "calcium" },
        { "total_calcium", "Calcium", "calcium" },
        { "calcium_total", "Calcium, Total", "calcium" },
        { "unknown", "Calcium, Total", "calcium" },
        { "calcium_ionized", "Calcium, Ionized", "" },
        { "hgb", "Hemoglobin", "hemoglobin" },
        { "hb", "Hb", "hemoglobin" },
        { "haemoglobin", "Haemoglobin", "hemoglobin" },
        { "hemoglobin_a1c", "Hemoglobin A1c", "" },
        { "plt", "PLT", "platelets" },
        { "unknown", "  Platelet-Count ", "platelets" },
        { "platelet_count", "Platelet count", "platelets" },
        { "inr", "INR", "inr" },
        { "pt_inr", "PT/INR", "inr" },
        { "unknown", "PT - INR", "inr" },
        { "sodium", "Potassium", "sodium" },
        { "ferritin", "Ferritin", "" },
        { "unknown", "Unknown", "" },
        { "", "", "" },
    };

    [Theory]
    [MemberData(nameof(Lookups))]
    public void TryFind_BySlugThenAliasThenName(string slug, string name, string analyte)
    {
        var found = CriticalLimitCatalog.Default.TryFind(slug, name, out var entry);

        Assert.Equal(analyte.Length > 0, found);
        Assert.Equal(analyte, entry?.Analyte ?? "");
    }

    // (text, key)
    public static TheoryData<string, string> Keys() => new()
    {
        { "Potassium", "potassium" },
        { "  Potassium, Serum ", "potassium_serum" },
        { "PT - INR", "pt_inr" },
        { "platelet__count", "platelet_count" },
        { "K+", "k+" },
        { ",-", "" },
    };

    [Theory]
    [MemberData(nameof(Keys))]
    public void Key_LowerCasesAndJoinsWithUnderscores(string text, string key) =>
        Assert.Equal(key, CriticalLimitCatalog.Key(text));

    [Fact]
    public void Create_ConfiguredEntry_ReplacesTheDefaultInPlaceAndKeepsItsAliases()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions
        {
            CriticalLimits = [new() { Analyte = "Potassium", Unit = "mmol/l", Low = 3.0, High = 6.0, Source = "our lab" }],
        });

        Assert.Equal(7, catalog.Entries.Count);
        var entry = catalog.Entries[0];
        Assert.Equal(("potassium", "mmol/L", (double?)3.0, (double?)6.0, "our lab"), (entry.Analyte, entry.Unit, entry.Low, entry.High, entry.Source));
        Assert.True(catalog.TryFind("k", "K", out var byAlias));
        Assert.Same(entry, byAlias);
        Assert.Equal(Interpretation.Critical, Computed(catalog, "potassium", 3.0));
        Assert.Equal(Interpretation.Critical, Computed(catalog, "potassium", 6.1));
        Assert.Equal(Interpretation.Unspecified, Computed(catalog, "potassium", 3.1));
    }

    [Fact]
    public void Create_ConfiguredEntryWithAliases_ReplacesTheDefaultAliases()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions
        {
            CriticalLimits = [new() { Analyte = "potassium", Aliases = ["kalium"], Unit = "mmol/L", Low = 2.5, High = 6.5 }],
        });

        Assert.True(catalog.TryFind("kalium", "", out _));
        Assert.False(catalog.TryFind("k", "K", out _));
        Assert.Equal(["kalium"], catalog.Entries[0].Aliases);
    }

    [Fact]
    public void Create_NewAnalyte_IsAddedAfterTheDefaults()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions
        {
            CriticalLimits = [new() { Analyte = "magnesium", Aliases = ["mg", "Magnesium, Serum"], Unit = "mg/dl", Low = 1.0, High = 4.9 }],
        });

        Assert.Equal(8, catalog.Entries.Count);
        var entry = catalog.Entries[^1];
        Assert.Equal(("magnesium", "mg/dL", (double?)1.0, (double?)4.9, "configuration"), (entry.Analyte, entry.Unit, entry.Low, entry.High, entry.Source));
        Assert.Equal(["mg", "magnesium_serum"], entry.Aliases);
        Assert.True(catalog.TryFind("unknown", "Magnesium, Serum", out _));
        Assert.Equal(Interpretation.Critical, Computed(catalog, "mg", 0.9, "mg/dL"));
        Assert.Equal(Interpretation.Critical, Computed(catalog, "potassium", 2.0));
    }

    [Fact]
    public void Create_WithoutDefaults_HoldsOnlyTheConfiguredEntries()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions
        {
            UseDefaultCriticalLimits = false,
            CriticalLimits = [new() { Analyte = "glucose", Unit = "mmol/L", Low = 2.5, High = 25 }],
        });

        var entry = Assert.Single(catalog.Entries);
        Assert.Equal(("glucose", "mmol/L"), (entry.Analyte, entry.Unit));
        Assert.Empty(entry.Aliases);
        Assert.False(catalog.TryFind("potassium", "Potassium", out _));
        // The default conversions still apply: 45 mg/dL is 2.498 mmol/L, at or below 2.5.
        Assert.Equal(Interpretation.Critical, Computed(catalog, "glucose", 45, "mg/dL"));
    }

    [Fact]
    public void Create_WithoutDefaultsOrEntries_IsEmpty()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions { UseDefaultCriticalLimits = false });

        Assert.Empty(catalog.Entries);
        Assert.False(catalog.TryFind("potassium", "Potassium", out _));
    }

    [Fact]
    public void Create_FromConfiguration_BindsTheSection()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["LabMesh:Results:UseDefaultCriticalLimits"] = "true",
                ["LabMesh:Results:CriticalLimits:0:Analyte"] = "sodium",
                ["LabMesh:Results:CriticalLimits:0:Unit"] = "mmol/L",
                ["LabMesh:Results:CriticalLimits:0:Low"] = "125",
                ["LabMesh:Results:CriticalLimits:0:High"] = "155.5",
                ["LabMesh:Results:CriticalLimits:1:Analyte"] = "lactate",
                ["LabMesh:Results:CriticalLimits:1:Aliases:0"] = "lactic_acid",
                ["LabMesh:Results:CriticalLimits:1:Unit"] = "mmol/L",
                ["LabMesh:Results:CriticalLimits:1:High"] = "4",
            })
            .Build();
        var options = configuration.GetSection(ResultsOptions.SectionName).Get<ResultsOptions>()!;

        var catalog = CriticalLimitCatalog.Create(options);

        var sodium = catalog.Entries[1];
        Assert.Equal(("sodium", (double?)125, (double?)155.5), (sodium.Analyte, sodium.Low, sodium.High));
        Assert.Contains("na", sodium.Aliases);
        var lactate = catalog.Entries[^1];
        Assert.Equal(("lactate", (double?)null, (double?)4.0), (lactate.Analyte, lactate.Low, lactate.High));
        Assert.Equal(["lactic_acid"], lactate.Aliases);
    }

    // (team, analyte as a marker names it, the tier the team sees): the catalog's, or the team's own.
    public static TheoryData<string, string, CriticalTier> Tiers() => new()
    {
        { "team-a", "potassium", CriticalTier.CriticalRisk },
        { "team-a", "glucose", CriticalTier.SignificantRisk },
        { "team-a", "lactate", CriticalTier.SignificantRisk },
        { "team-b", "glucose", CriticalTier.CriticalRisk },
        { "team-b", "lactate", CriticalTier.CriticalRisk },
        { "team-c", "lactate", CriticalTier.SignificantRisk },
        { "team-c", "not_in_the_catalog", CriticalTier.CriticalRisk },
    };

    [Theory]
    [MemberData(nameof(Tiers))]
    public void TierOf_IsTheTeamsOwnElseTheEntrys(string team, string analyte, CriticalTier expected)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["LabMesh:Results:CriticalLimits:0:Analyte"] = "lactate",
                ["LabMesh:Results:CriticalLimits:0:Unit"] = "mmol/L",
                ["LabMesh:Results:CriticalLimits:0:High"] = "4",
                ["LabMesh:Results:CriticalLimits:0:Tier"] = "significant_risk",
                ["LabMesh:Results:Teams:team-a:Tiers:glu"] = "significant_risk",
                ["LabMesh:Results:Teams:team-b:Tiers:lactate"] = "critical_risk",
            })
            .Build();
        var catalog = CriticalLimitCatalog.Create(configuration.GetSection(ResultsOptions.SectionName).Get<ResultsOptions>()!);

        Assert.Equal(expected, catalog.TierOf(team, analyte));
    }

    [Fact]
    public void Defaults_AreAllCriticalRisk_AndATeamTierForAnUnknownAnalyteOrWord_Throws()
    {
        Assert.All(CriticalLimitCatalog.Default.Entries, e => Assert.Equal(CriticalTier.CriticalRisk, e.Tier));
        var unknownAnalyte = new ResultsOptions { Teams = { ["team-a"] = new TeamResultsOptions { Tiers = { ["lactate"] = "significant_risk" } } } };
        Assert.Contains("lactate", Assert.Throws<ArgumentException>(() => CriticalLimitCatalog.Create(unknownAnalyte)).Message, StringComparison.Ordinal);
        var unknownWord = new ResultsOptions { Teams = { ["team-a"] = new TeamResultsOptions { Tiers = { ["k"] = "soon" } } } };
        Assert.Contains("Teams:team-a:Tiers:k", Assert.Throws<ArgumentException>(() => CriticalLimitCatalog.Create(unknownWord)).Message, StringComparison.Ordinal);
    }

    // (case, configured entries, a word the message must hold)
    public static TheoryData<string, CriticalLimitOptions[], string> Invalid() => new()
    {
        { "no analyte", [new() { Analyte = "", Unit = "mmol/L", High = 4 }], "Analyte" },
        { "blank analyte", [new() { Analyte = " , ", Unit = "mmol/L", High = 4 }], "Analyte" },
        { "neither bound", [new() { Analyte = "lactate", Unit = "mmol/L" }], "Low, High" },
        { "low equal to high", [new() { Analyte = "lactate", Low = 4, High = 4 }], "below High" },
        { "low above high", [new() { Analyte = "potassium", Low = 6.2, High = 2.8 }], "below High" },
        { "low NaN", [new() { Analyte = "lactate", Low = double.NaN, High = 4 }], "Low must be a finite" },
        { "low -infinity", [new() { Analyte = "lactate", Low = double.NegativeInfinity }], "Low must be a finite" },
        { "high +infinity", [new() { Analyte = "lactate", High = double.PositiveInfinity }], "High must be a finite" },
        { "high NaN", [new() { Analyte = "lactate", Low = 0.5, High = double.NaN }], "High must be a finite" },
        {
            "one analyte twice", [
                new() { Analyte = "lactate", High = 4 },
                new() { Analyte = "Lactate", High = 5 },
            ], "twice"
        },
        { "alias of a default analyte", [new() { Analyte = "kalium_total", Aliases = ["k"], High = 6 }], "'k'" },
        { "alias naming a default analyte", [new() { Analyte = "natrium", Aliases = ["sodium"], High = 160 }], "'sodium'" },
        {
            "alias shared by two new analytes", [
                new() { Analyte = "lactate", Aliases = ["lac"], High = 4 },
                new() { Analyte = "lactic_acid", Aliases = ["LAC"], High = 4 },
            ], "'lac'"
        },
        { "empty alias", [new() { Analyte = "lactate", Aliases = [" "], High = 4 }], "alias" },
        { "unknown tier", [new() { Analyte = "lactate", High = 4, Tier = "urgent" }], "critical_risk' or 'significant_risk" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Create_InvalidConfiguration_Throws(string @case, CriticalLimitOptions[] entries, string expected)
    {
        var options = new ResultsOptions { CriticalLimits = [.. entries] };

        var exception = Assert.Throws<ArgumentException>(() => CriticalLimitCatalog.Create(options));

        Assert.True(exception.Message.Contains(expected, StringComparison.Ordinal), $"{@case}: {exception.Message}");
    }

    [Fact]
    public void Create_AliasOfARemovedDefault_IsAllowedWithoutDefaults()
    {
        var catalog = CriticalLimitCatalog.Create(new ResultsOptions
        {
            UseDefaultCriticalLimits = false,
            CriticalLimits = [new() { Analyte = "kalium", Aliases = ["k"], Unit = "mmol/L", Low = 2.5, High = 6.5 }],
        });

        Assert.True(catalog.TryFind("k", "K", out var entry));
        Assert.Equal("kalium", entry.Analyte);
    }

    private static Interpretation Computed(
        CriticalLimitCatalog catalog, string slug, double value, string unit = "mmol/L") =>
        new MarkerReader(catalog).Read(TestMarkers.Number(slug, value, unit)).ComputedInterpretation;
}
