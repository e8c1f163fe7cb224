// The tests here measure rates, count open streams and listen to process-wide telemetry: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
