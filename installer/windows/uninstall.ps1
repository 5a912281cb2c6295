<#
.SYNOPSIS
Removes what install.ps1 installed: unregisters the "FER Cam" Unity Capture filter, deletes the shortcuts and
the app folder. Use -WhatIf to see every step without doing it.

.PARAMETER InstallDir
The folder FER Cam was installed into (default: %LOCALAPPDATA%\FERCam).

.EXAMPLE
powershell -ExecutionPolicy Bypass -File installer\windows\uninstall.ps1
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA "FERCam")
)
Set-StrictMode -Version Latest
$ErrorActionPreference = "Stop"
. (Join-Path $PSScriptRoot "common.ps1")
$script:Cmdlet = $PSCmdlet

# Newest first, so registrations are undone before their DLL folder goes. Without a manifest: the fixed paths.
function Get-Entries {
    if (Test-Path $ManifestPath) {
        $lines = @(Get-Content $ManifestPath | Where-Object { $_.Trim() })
        [array]::Reverse($lines)
        return $lines
    }
    Write-Warning "No $ManifestPath; removing the standard FER Cam shortcuts and folders that exist."
    return @("file $StartupLink", "file $StartMenuLink", "dir $(Join-Path $InstallDir 'venv')", "dir $(Join-Path $InstallDir 'app')")
}

# Only paths inside the install folder or the two shortcuts are deleted, whatever the manifest says.
function Test-Ours([string]$Path) {
    $inside = $Path.StartsWith($InstallDir.TrimEnd("\") + "\", [StringComparison]::OrdinalIgnoreCase)
    return $inside -or $Path -eq $StartMenuLink -or $Path -eq $StartupLink
}

function Remove-Entry([string]$Kind, [string]$Path) {
    if (-not (Test-Ours $Path)) {
        Write-Warning "Not touching $Path (outside $InstallDir)"
        return
    }
    switch -Regex ($Kind) {
        "^regsvr32-(32|64)$" {
            if (Test-Path $Path) { Invoke-Regsvr32 $Path $Matches[1] @("/u", "/s") }
        }
        "^(file|dir)$" {
            if ((Test-Path $Path) -and (Confirm-Step $Path "Remove")) { Remove-Item -Recurse -Force -Path $Path }
        }
        default { Write-Warning "Unknown manifest line: $Kind $Path" }
    }
}

foreach ($entry in Get-Entries) {
    $kind, $path = $entry -split " ", 2
    Remove-Entry $kind $path
}
$leftover = (Test-Path $InstallDir) -and -not (Get-ChildItem -Force $InstallDir | Select-Object -First 1)
if ($leftover -and (Confirm-Step $InstallDir "Remove the empty folder")) { Remove-Item -Force $InstallDir }
Write-Host "FER Cam is uninstalled."
