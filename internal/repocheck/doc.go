// Package repocheck holds repository-wide checks that run with the unit
// tests (every package documents what it owns, ...). It has no code.
package repocheck
