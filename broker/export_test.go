package broker

// Hooks for the external tests (package broker_test).

// SetWriteMetaFile replaces how the metadata file is written (to inject
// a full disk) and returns a function restoring it, plus the real writer.
func SetWriteMetaFile(f func(write func(path string, data []byte) error) func(path string, data []byte) error) (restore func()) {
	old := writeMetaFile
	writeMetaFile = f(old)
	return func() { writeMetaFile = old }
}

// MetadataReserveFile is the name of the reserve kept next to the
// metadata file.
const MetadataReserveFile = metadataReserveFile
