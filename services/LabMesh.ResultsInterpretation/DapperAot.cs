// Every Dapper call of this assembly goes through Dapper.AOT's build-time interceptors: generated readers and parameter
// binders, so SqlMapper (its IL emitted at run time) is never reached, and the code runs in a Native AOT executable
// (issue 22 item 3), as in ServiceRequest.
[module: Dapper.DapperAot]
