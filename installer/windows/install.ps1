<#
.SYNOPSIS
Installs FER Cam for the current user: the app, the "FER Cam" virtual camera (Unity Capture), shortcuts.

.DESCRIPTION
Installs the app into %LOCALAPPDATA%\FERCam, either by copying a PyInstaller build (dist\fercam, made with
installer\windows\fercam.spec) or into a virtual environment with pip. With -UnityCaptureDir it copies the
Unity Capture filter DLLs there and registers them under the camera name "FER Cam" (one UAC prompt per
DLL); nothing is downloaded. Without it, use OBS Studio's Virtual Camera instead (see installer\README.md).
Every file and registration is listed in installed-files.txt, which uninstall.ps1 reads.
Use -WhatIf to see every step without doing it.

.PARAMETER UnityCaptureDir
Folder with UnityCaptureFilter32bit.dll and UnityCaptureFilter64bit.dll (the "Install" folder of Unity Capture).

.PARAMETER Bundle
A PyInstaller one-folder build to install instead of pip (default: dist\fercam of this checkout, if built).

.PARAMETER InstallDir
Where FER Cam goes (default: %LOCALAPPDATA%\FERCam).

.PARAMETER Python
The Python (3.10 or newer) for the virtual environment (default: the py launcher, else python).

.PARAMETER Autostart
Also start FER Cam at login (a shortcut in the Startup folder).

.EXAMPLE
powershell -ExecutionPolicy Bypass -File installer\windows\install.ps1 -UnityCaptureDir C:\Downloads\UnityCapture\Install -Autostart
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$UnityCaptureDir = "",
    [string]$Bundle = "",
    [string]$InstallDir = (Join-Path $env:LOCALAPPDATA "FERCam"),
    [string]$Python = "",
    [switch]$Autostart
)
Set-StrictMode -Version Latest
$ErrorActionPreference = "Stop"
. (Join-Path $PSScriptRoot "common.ps1")

$ProjectDir = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
$Records = New-Object System.Collections.Generic.List[string]
$script:Cmdlet = $PSCmdlet

function Add-Record([string]$Kind, [string]$Value) { $Records.Add("$Kind $Value") }

# The Python to build the virtual environment with, checked to be 3.10 or newer.
function Find-Python {
    $ErrorActionPreference = "Continue"  # a missing launcher writes to stderr, which must not stop the search
    $candidates = @()
    if ($Python) { $candidates += , @($Python) }
    if (Get-Command py -ErrorAction SilentlyContinue) { $candidates += , @("py", "-3") }
    if (Get-Command python -ErrorAction SilentlyContinue) { $candidates += , @("python") }
    foreach ($cmd in $candidates) {
        $exe = $cmd[0]
        $pyArgs = @($cmd | Select-Object -Skip 1)
        $found = & $exe @pyArgs -c "import sys; print(sys.executable if sys.version_info >= (3, 10) else '')" 2>$null
        if ($LASTEXITCODE -eq 0 -and $found) { return ($found | Select-Object -Last 1).Trim() }
    }
    throw "No Python 3.10 or newer found: install it from python.org (or pass -Python C:\path\python.exe)"
}

# Copies a PyInstaller build; returns the launchers (tray without console, CLI).
function Install-Bundle([string]$From) {
    $target = Join-Path $InstallDir "app"
    if (Confirm-Step $target "Copy the FER Cam build from $From") {
        New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
        if (Test-Path $target) { Remove-Item -Recurse -Force $target }
        Copy-Item -Recurse -Path $From -Destination $target
    }
    Add-Record "dir" $target
    return @{ Target = (Join-Path $target "fercamw.exe"); Arguments = ""; Cli = (Join-Path $target "fercam.exe") }
}

# Creates the virtual environment and pip-installs this checkout into it.
function Install-Venv {
    $venv = Join-Path $InstallDir "venv"
    $py = Find-Python
    Invoke-Step $py @("-m", "venv", $venv)
    Add-Record "dir" $venv
    Invoke-Step (Join-Path $venv "Scripts\python.exe") @("-m", "pip", "install", "--upgrade", $ProjectDir)
    $scripts = Join-Path $venv "Scripts"
    return @{ Target = (Join-Path $scripts "pythonw.exe"); Arguments = "-m fercam"; Cli = (Join-Path $scripts "fercam.exe") }
}

function Install-App {
    $from = if ($Bundle) { $Bundle } else { Join-Path $ProjectDir "dist\fercam" }
    if (Test-Path (Join-Path $from "fercamw.exe")) { return Install-Bundle (Resolve-Path $from).Path }
    if ($Bundle) { throw "$Bundle has no fercamw.exe: build it with pyinstaller installer\windows\fercam.spec" }
    return Install-Venv
}

# Copies the Unity Capture DLLs next to FER Cam (so the download can go) and registers them as "FER Cam".
function Register-UnityCapture {
    if (-not $UnityCaptureDir) {
        Write-Host @"
No -UnityCaptureDir given: the "$CameraName" camera is not registered.
  Option 1: download Unity Capture (github.com/schellingb/UnityCapture), then run this installer again with
            -UnityCaptureDir <its Install folder>.
  Option 2: install OBS Studio 30+, click "Start Virtual Camera" once, and stop it again; FER Cam then sends
            into "OBS Virtual Camera" (pick that camera in Zoom/Meet/Teams).
"@
        return
    }
    $target = Join-Path $InstallDir "unitycapture"
    $dlls = @(foreach ($bits in "32", "64") { Find-UnityCaptureDll $UnityCaptureDir $bits })
    if (Confirm-Step $target "Copy the Unity Capture filter DLLs") {
        New-Item -ItemType Directory -Force -Path $target | Out-Null
        foreach ($dll in $dlls) { Copy-Item -Force -Path $dll.Path -Destination $target }
    }
    Add-Record "dir" $target
    foreach ($dll in $dlls) {
        $installed = Join-Path $target (Split-Path -Leaf $dll.Path)
        Invoke-Regsvr32 $installed $dll.Bits @("/s") "`"/i:UnityCaptureName=$CameraName`""
        Add-Record "regsvr32-$($dll.Bits)" $installed
    }
}

function New-Shortcut([string]$Path, [hashtable]$App) {
    if (-not (Confirm-Step $Path "Create shortcut to $($App.Target) $($App.Arguments)")) { return }
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $Path) | Out-Null
    $link = (New-Object -ComObject WScript.Shell).CreateShortcut($Path)
    $link.TargetPath = $App.Target
    $link.Arguments = $App.Arguments
    $link.WorkingDirectory = $InstallDir
    $link.Description = "Facial-expression overlay as the virtual camera $CameraName"
    $link.Save()
}

# Keeps the lines of earlier runs, so a later -Autostart run still uninstalls everything.
function Write-Manifest {
    $old = if (Test-Path $ManifestPath) { @(Get-Content $ManifestPath) } else { @() }
    Add-Record "file" $ManifestPath
    $lines = @(@($old) + @($Records)) | Where-Object { $_ } | Select-Object -Unique
    if (Confirm-Step $ManifestPath "Write the list of installed files") {
        New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
        Set-Content -Path $ManifestPath -Value $lines -Encoding UTF8
    }
}

$app = Install-App
Register-UnityCapture
New-Shortcut $StartMenuLink $app
Add-Record "file" $StartMenuLink
if ($Autostart) {
    New-Shortcut $StartupLink $app
    Add-Record "file" $StartupLink
}
Write-Manifest
Write-Host "Done. Check the setup with: `"$($app.Cli)`" doctor   (uninstall: installer\windows\uninstall.ps1)"
