package files

// SetCopyLimits lowers the size past which the s3 store copies part by
// part, so that a test reaches UploadPartCopy without a 5 GiB object. It
// returns the function that puts the limits back.
func SetCopyLimits(limit, part int64) func() {
	oldLimit, oldPart := copyLimit, copyPart
	copyLimit, copyPart = limit, part
	return func() { copyLimit, copyPart = oldLimit, oldPart }
}
