package vms
