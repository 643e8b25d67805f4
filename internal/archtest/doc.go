// Package archtest holds tests of the code's layout: which packages may
// use the transport's types, how large files and the daemon package may
// grow. It has no code.
package archtest
