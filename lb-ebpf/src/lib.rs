#![no_std]
// This file exists so that lb-userspace can name this crate as a build
// dependency (aya-template's layout); the programs are in the binary target.
