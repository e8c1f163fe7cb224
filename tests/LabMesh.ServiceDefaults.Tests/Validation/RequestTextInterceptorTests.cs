using Google.Protobuf.WellKnownTypes;
using LabMesh.Core.Errors;
using LabMesh.Core.Validation;

namespace LabMesh.ServiceDefaults.Tests.Validation;

/// <summary>Where in a message a NUL is found, at every kind of field: the path named is the one at fault.</summary>
public sealed class RequestTextInterceptorTests
{
    [Fact]
    public void Check_CleanMessage_Passes()
    {
        RequestTextInterceptor.Check(new Struct { Fields = { ["a"] = Value.ForString("text"), ["n"] = Value.ForNumber(1) } });
        RequestTextInterceptor.Check(null);
    }

    [Fact]
    public void Check_NulInAMapKey_NamesTheEntryByPosition_NotByTheKey()
    {
        var violation = Violation(new Struct { Fields = { ["fine"] = Value.ForNull(), ["bad\0key"] = Value.ForString("x") } });

        Assert.Equal("fields[1]", violation.Field);
    }

    [Fact]
    public void Check_NulInANestedString_NamesTheWholePath()
    {
        var message = new Struct
        {
            Fields =
            {
                ["list"] = Value.ForList(Value.ForString("ok"), Value.ForStruct(new Struct { Fields = { ["deep"] = Value.ForString("b\0d") } })),
            },
        };

        Assert.Equal("fields[0].list_value.values[1].struct_value.fields[0].string_value", Violation(message).Field);
    }

    [Fact]
    public void Check_NulInARepeatedString_NamesItsIndex()
    {
        var mask = new FieldMask { Paths = { "a", "b\0" } };

        Assert.Equal("paths[1]", Violation(mask).Field);
    }

    private static FieldViolation Violation(object message) =>
        Assert.Single(Assert.Throws<InvalidArgumentException>(() => RequestTextInterceptor.Check(message)).Violations);
}
