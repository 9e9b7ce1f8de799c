global using BigFS.Testing;
