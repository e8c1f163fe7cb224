return await LabMesh.Cli.Cli.RunAsync(args);
